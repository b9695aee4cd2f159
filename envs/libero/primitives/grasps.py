"""Where to hold each kind of LIBERO object (`GraspSpec`), by BDDL object category."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EMPTY_GAP = 0.006  # finger gap below which the gripper closed on nothing (~0.002); see GraspSpec.empty_gap


@dataclass(frozen=True)
class GraspSpec:
    """Where to hold an object, relative to its body position (world frame, metres)."""

    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    # > 0: grasp a rim this far from the centre, on the side facing the robot (-x), with the hand
    # turned a quarter turn so that the fingers close along x, across the rim wall.
    rim_radius: float = 0.0
    release_height: float = 0.05  # height of the grasp point above the destination when releasing
    carry_height: float = 0.12  # height of the grasp point above the destination while carrying
    empty_gap: float = EMPTY_GAP  # finger gap (m) below which the fingers hold nothing
    # Upward action (units) while the fingers open at the destination: a rim wedged between them
    # keeps them from opening unless the hand pulls away.
    release_lift: float = 0.0
    # Grasps in the object's own frame (books, mugs, pans, moka pots): set `finger_axis` (rad, in the
    # object's x-y plane), the axis the fingers close along; the hand's yaw then follows the object. The
    # grasp point is `local_point` (object frame, from its body position), or when None the top centre
    # of the object's box, `top_depth` below its top. `far_side` mirrors the point's horizontal part to the
    # side away from the robot (of a mug's two rim points clear of its handle, the one the arm reaches
    # also for a mug close to the robot's base).
    finger_axis: float | None = None
    local_point: tuple[float, float, float] | None = None
    top_depth: float = 0.025
    far_side: bool = False
    # Placing by the object's box (None: by `release_height` / `carry_height` above the destination's
    # position): carried with its bottom this far above the destination's box, released once its bottom
    # is `release_clearance` above what it goes on (an In region's floor, an On destination's top).
    release_clearance: float | None = None
    # Turn the object while carrying so that its finger axis lies across a narrow destination (a book
    # into a caddy's slot).
    align_to_slot: bool = False
    # Placing by the object's box: line up its body position over the destination, not its box's centre
    # (a pan held by its handle: LIBERO checks the body position, which the handle pulls the box away from).
    place_by_origin: bool = False

    @property
    def yaw(self) -> float | None:
        """Hand yaw (rad) about world z from the reset pose for world-frame grasps; None: orientation not
        controlled (or, for object-frame grasps, set from the object's yaw)."""
        return np.pi / 2 if self.rim_radius > 0 else None


BOWL_GRASP = GraspSpec(offset=(0.0, 0.0, 0.030), rim_radius=0.047, release_height=0.07, empty_gap=0.003,
                       release_lift=0.3)
# Body positions are object centres for the libero_object groceries and bottoms for bowls/plates.
GRASP_SPECS = {
    # Bowls: by the rim, whose wall leaves a gap of 4-6 mm between the fingers (closed on nothing: 2-3 mm).
    "akita_black_bowl": BOWL_GRASP,
    "black_bowl": BOWL_GRASP,
    # Flat boxes (1.8 cm tall): aim below the centre, as the descent stalls ~1 cm above its target.
    # Cream cheese: 3 cm off-centre along its long side (x), away from the tomato sauce that the
    # 20-cm-wide hand otherwise lands on in libero_object.
    "cream_cheese": GraspSpec(offset=(-0.03, 0.0, -0.006), release_height=0.06),
    "butter": GraspSpec(offset=(0.0, 0.0, -0.006), release_height=0.06),
    "chocolate_pudding": GraspSpec(offset=(0.0, 0.0, 0.0), release_height=0.06),
    # Tall bottles and cartons: grasp high, or the palm (~6 cm above the grip site) hits their top.
    "salad_dressing": GraspSpec(offset=(0.0, 0.0, 0.045), release_height=0.09, carry_height=0.2),
    # The same bottle in libero_90's living room, with its body position 5 cm below its centre.
    "new_salad_dressing": GraspSpec(offset=(0.0, 0.0, 0.095), release_height=0.09, carry_height=0.2),
    "ketchup": GraspSpec(offset=(0.0, 0.0, 0.045), release_height=0.09, carry_height=0.2),
    "milk": GraspSpec(offset=(0.0, 0.0, 0.035), release_height=0.08, carry_height=0.19),
    "orange_juice": GraspSpec(offset=(0.0, 0.0, 0.035), release_height=0.08, carry_height=0.19),
    "bbq_sauce": GraspSpec(offset=(0.0, 0.0, 0.02), release_height=0.07, carry_height=0.17),
    # Wine bottle: body position at its base, 15.7 cm tall; held at the top of the neck, as the
    # hand reaches down only ~3 cm below the grip site.
    "wine_bottle": GraspSpec(offset=(0.0, 0.0, 0.13), release_height=0.145, carry_height=0.19),
}
# Object-frame grasps, placed by their box.
# Books stand on their bottom edge: taken at the top, across their thickness (local x).
BOOK_GRASP = GraspSpec(finger_axis=0.0, top_depth=0.03, release_clearance=0.01, align_to_slot=True, empty_gap=0.01)


def mug_grasp(height: float) -> GraspSpec:
    """Mugs (handle along local x, ~4.7 cm radius): by the rim across local y, 2 cm below the top."""
    return GraspSpec(finger_axis=np.pi / 2, local_point=(0.0, 0.043, height - 0.02), far_side=True,
                     empty_gap=0.003, release_clearance=0.01, release_lift=0.3)


GRASP_SPECS.update({
    "black_book": BOOK_GRASP,
    "yellow_book": BOOK_GRASP,
    "red_coffee_mug": mug_grasp(0.131),
    "porcelain_mug": mug_grasp(0.108),
    "white_yellow_mug": mug_grasp(0.103),
    # Frying pan (50 g, handle along local +x): by the handle next to the pan, across its 2.5-cm width. By the
    # rim the fingers close on a 8-mm wall that slides out as the hand rises; further out along the handle the
    # 20-cm-wide hand comes down on the moka pot that often stands past its end. It hangs tilted from the
    # fingers, so it is lined up by its body position (what LIBERO checks), not its box.
    "chefmate_8_frypan": GraspSpec(finger_axis=np.pi / 2, local_point=(0.135, 0.0, 0.036),
                                   release_clearance=0.01, empty_gap=0.006, place_by_origin=True),
    # Moka pot (body position at mid-height; 8 cm wide, wider than the open hand): by its handle's loop
    # (local y 0.04-0.09), across its 1.4 cm thickness.
    "moka_pot": GraspSpec(finger_axis=0.0, local_point=(0.0, 0.068, 0.045), release_clearance=0.01,
                          empty_gap=0.006),
    # White bowl (8 cm, 3.5 cm tall): by the rim on the robot's side, as the black bowls.
    "white_bowl": GraspSpec(offset=(0.0, 0.0, 0.025), rim_radius=0.037, empty_gap=0.003, release_lift=0.3,
                            release_clearance=0.01),
})
DEFAULT_GRASP = GraspSpec()

# Grasps that keep the hand outside a container entered through a door (`primitives.through_door`): the
# oven is 14 cm tall inside, a mug 10.3 cm, and the hand reaches ~10 cm above its grip site. The yellow and
# white mug by its handle (local +x, which in every official init state points out of the oven's
# opening): the handle's outer bar, 8 mm thick across local y, 6.4 cm from the mug's axis.
THROUGH_DOOR_GRASPS = {
    "white_yellow_mug": GraspSpec(finger_axis=np.pi / 2, local_point=(0.064, 0.0, 0.06), empty_gap=0.004,
                                  release_clearance=0.01),
}


def grasp_for(kind: str, through_door: bool = False) -> GraspSpec:
    """The GraspSpec of a BDDL object category (DEFAULT_GRASP for kinds not in the table); with
    `through_door`, the one for putting it through a door when the kind has one."""
    if through_door and kind in THROUGH_DOOR_GRASPS:
        return THROUGH_DOOR_GRASPS[kind]
    return GRASP_SPECS.get(kind, DEFAULT_GRASP)
