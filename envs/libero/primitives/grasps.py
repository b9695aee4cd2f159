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

    @property
    def yaw(self) -> float | None:
        """Hand yaw (rad) about world z from the reset pose; None: orientation not controlled."""
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
    "ketchup": GraspSpec(offset=(0.0, 0.0, 0.045), release_height=0.09, carry_height=0.2),
    "milk": GraspSpec(offset=(0.0, 0.0, 0.035), release_height=0.08, carry_height=0.19),
    "orange_juice": GraspSpec(offset=(0.0, 0.0, 0.035), release_height=0.08, carry_height=0.19),
    "bbq_sauce": GraspSpec(offset=(0.0, 0.0, 0.02), release_height=0.07, carry_height=0.17),
    # Wine bottle: body position at its base, 15.7 cm tall; held at the top of the neck, as the
    # hand reaches down only ~3 cm below the grip site.
    "wine_bottle": GraspSpec(offset=(0.0, 0.0, 0.13), release_height=0.145, carry_height=0.19),
}
DEFAULT_GRASP = GraspSpec()


def grasp_for(kind: str) -> GraspSpec:
    """The GraspSpec of a BDDL object category (DEFAULT_GRASP for kinds not in the table)."""
    return GRASP_SPECS.get(kind, DEFAULT_GRASP)
