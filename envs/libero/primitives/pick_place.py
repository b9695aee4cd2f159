"""Pick-and-place: take an object by its `GraspSpec` and put it in or on its destination.

Stateless: every step the phase is re-derived from the observation window (To = 2):
    held     the gripper is partly closed, not still closing, and the grasp point is at the
             fingers: carry the object above the destination, lower it, open;
    closing  the finger gap shrank since the last observation: keep closing in place;
    at grasp the fingers are at the grasp point: close;
    missed   the fingers closed on nothing at the grasp point: open and rise;
    placed   the object already sits at the destination: open and rise;
    else     approach: open, rise, move above the grasp point, descend.
Bowls are taken by the rim on the robot's side with the hand turned a quarter turn (fingers closing
along x), which keeps the 20-cm-wide hand clear of neighbours, drawer walls and the cabinet top; the
orientation is then servoed from ``obs.state``'s axis-angle. Boxes are taken across their narrow side,
shifted along the fingers away from a plan entity beside them. Objects put On one destination get places
side by side (`slot_offset`); an object lifted from above its carry height (out of a drawer, off a shelf)
rises straight before it travels; the hand rises out of a basket before it travels to the next object.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from envs.libero.plan import SubGoal, TaskPlan
from envs.libero.primitives.grasps import GraspSpec, grasp_for
from envs.libero.primitives.motion import (
    GAIN, OPEN_GAP, ROTATION_GAIN, Hand, action, at_least, hand_yaw, rotation_action, upright_recovery,
)
from envs.libero.primitives.through_door import Opening, carry_through_door
from envs.libero.privileged import Mechanism, PrivilegedView

AT_GRASP = 0.012  # distance (m) from the grasp point at which the fingers close
HOLD_RADIUS = 0.035  # distance (m) grasp point - fingers while the object is held
CARRY_CLEARANCE = 0.12  # height above the destination the fingers wait at once the object is placed (m)
XY_TOLERANCE = 0.015  # horizontal distance (m) to the grasp point below which the fingers descend
MIN_XY_ACTION = 0.25  # smallest horizontal action (units) while aligning: below it the OSC stalls short of the target
CARRY_CEILING = 0.35  # highest a held object rises above its destination (m): its grasp point, or its bottom
# above the destination's box when placed by its box
RESTING_BAND = 0.04  # below this height (m) above the release height, an object that stopped sinking is let go
RESTING_SPEED = 5e-4  # sinking (m per step) below which a lowered object counts as resting on something
BACK_OFF = 0.3  # fraction of the horizontal error the object moves away from a higher destination while rising
BOX_CLEARANCE = 0.05  # height (m) of a carried object's bottom above its destination's box
PICKED_ABOVE = 0.08  # an object this far (m) above its travel height was picked up from that high (off a
# microwave's roof, 11 cm above), not lifted past it (a mug swinging in the fingers passes it by 3 cm)
LOWERING_TOLERANCE = 0.03  # horizontal error (m) of an object on its way down into its destination that is
# corrected while lowering rather than by rising again
MAX_LOWERING = 0.5  # fastest descent (action units) of an object placed by its box (into a slot)
SLOT_WIDTH = 0.09  # destinations narrower than this (m) get the object turned across them (a caddy's slot)
SLOT_SPREAD = 0.75  # objects sharing a destination go this share of its half length either side of its centre
UNDER_MARGIN = 0.03  # horizontal margin (m) around a box the hand counts as standing over
UNDER_CLEARANCE = 0.06  # height (m) of the grip site over what stands under it before travelling sideways
MAX_FINGER_SHIFT = 0.015  # largest shift (m) of a grasp along the fingers, away from a neighbour
FINGER_MARGIN = 0.003  # room (m) kept between the object and the finger it is shifted towards
NEIGHBOUR_BAND = 0.03  # a neighbour's box this close (m) across the fingers' axis stands beside the object
NEIGHBOUR_DISTANCE = 0.08  # a neighbour's near face this close (m) along the fingers' axis is in their way
ELONGATED = 1.3  # an object's box this many times longer than wide is taken across its narrow side
PLACE_TOLERANCE = 0.012  # horizontal error (m) over the destination below which the object is lowered
REGION_TOLERANCE = 0.4  # share of an In region's half width within which the object is lowered
YAW_TOLERANCE = 0.15  # yaw error (rad) below which the fingers descend to a rim


@dataclass(frozen=True)
class Placing:
    """One pick-and-place at one moment, world frame (m): the object's position, orientation (quaternion
    xyzw) and box (low and high corners), the destination's position and box, whether the goal is In
    (else On), and how far the object sank over the observation window."""

    grasp: GraspSpec
    center: np.ndarray
    orientation: np.ndarray
    box: tuple[np.ndarray, np.ndarray]
    destination: np.ndarray
    destination_box: tuple[np.ndarray, np.ndarray]
    inside: bool
    sinking: float
    clear_height: float  # top (m) of the destination's box and of the container it belongs to
    slot_direction: np.ndarray | None = None  # (2,) unit, from the destination's centre to the object's place
    # in it, when it shares the destination with other objects
    finger_shift: np.ndarray | None = None  # (3,) added to a world-frame grasp point: away from a neighbour
    door_opening: Opening | None = None  # when the destination is behind a hinged door (`through_door`)

    @property
    def grasp_point(self) -> np.ndarray:
        """(3,) world position the grip site goes to."""
        if self.grasp.finger_axis is not None:  # in the object's own frame
            if self.grasp.local_point is None:  # the top of its box
                low, high = self.box
                return np.r_[(low[:2] + high[:2]) / 2, high[2] - self.grasp.top_depth]
            offset = Rotation.from_quat(self.orientation).apply(self.grasp.local_point)
            if self.grasp.far_side and offset[0] < 0:  # the mirror point, away from the robot
                offset[:2] = -offset[:2]
            return self.center + offset
        point = self.center + np.asarray(self.grasp.offset)
        point[0] -= self.grasp.rim_radius  # the rim wall on the robot's side sits between the fingers
        return point if self.finger_shift is None else point + self.finger_shift

    @property
    def yaw(self) -> float:
        """The object's yaw (rad) about world z."""
        return float(Rotation.from_quat(self.orientation).as_euler("zyx")[0])

    @property
    def finger_direction(self) -> float | None:
        """World angle (rad) of the object's finger axis; None for world-frame grasps."""
        return None if self.grasp.finger_axis is None else self.yaw + self.grasp.finger_axis

    @property
    def support(self) -> float:
        """Height (m) the object is put down on: an In region's floor, an On destination's top."""
        low, high = self.destination_box
        return float(low[2] if self.inside else high[2])

    @property
    def xy_tolerance(self) -> float:
        """Horizontal error (m) of the object's centre over the destination at which it is lowered: for an
        In region, a share of the region's box (LIBERO checks the centre is inside it; correcting the last
        centimetres against a drawer's front stalls the arm), else `PLACE_TOLERANCE`."""
        if not self.inside:
            return PLACE_TOLERANCE
        low, high = self.destination_box
        return max(PLACE_TOLERANCE, REGION_TOLERANCE * float(np.min(high[:2] - low[:2]) / 2))

    @property
    def bottom(self) -> float:
        return float(self.box[0][2])

    def rests_by(self, release: float) -> bool:
        """Whether the object, its bottom within `RESTING_BAND` of the release height `release` (m), has
        stopped sinking: it stands on something short of the release height."""
        return self.bottom < release + RESTING_BAND and self.sinking < RESTING_SPEED


def slot_offset(box: tuple[np.ndarray, np.ndarray], slot: int, slots: int) -> np.ndarray:
    """(3,) offset of place `slot` of `slots` in a destination's box (low, high): spread along its longer
    horizontal side, `SLOT_SPREAD` of its half length from the centre at the ends."""
    half = (box[1] - box[0])[:2] / 2
    axis = int(np.argmax(half + np.array([0.0, 1e-6])))  # a square: side by side along y, as the robot sees it
    offset = np.zeros(3)
    offset[axis] = SLOT_SPREAD * half[axis] * (2 * slot / (slots - 1) - 1)
    return offset


def finger_shift(plan: TaskPlan, view: PrivilegedView, target: int, box: tuple[np.ndarray, np.ndarray]
                 ) -> np.ndarray | None:
    """(3,) shift of a world-frame grasp of entity `target` along the fingers' axis, away from the nearest
    other plan entity beside it: the open fingers (7.8 cm apart) straddle a 4-cm box with room to spare,
    and the outer finger otherwise comes down on a bowl's rim next to it. None when the fingers' axis is
    not set by the object (`across_narrow_side`) or nothing stands beside it."""
    yaw = across_narrow_side(box)
    if yaw is None:
        return None
    axis = np.array([-np.sin(yaw), np.cos(yaw), 0.0])  # the fingers close along it
    across = np.array([axis[1], -axis[0], 0.0])
    centre = (box[0] + box[1]) / 2
    half_width = float(np.abs(axis) @ (box[1] - box[0]) / 2)
    room = min(MAX_FINGER_SHIFT, OPEN_GAP / 2 - half_width - FINGER_MARGIN)
    nearest, side = np.inf, 0.0
    for row in range(len(plan.entities)):
        low, high = view.box(row)
        if row == target or not np.any(high - low):
            continue
        offset = (low + high) / 2 - centre
        reach_across = float(np.abs(across) @ (high - low) / 2)
        along, beside = float(offset @ axis), abs(float(offset @ across))
        gap = abs(along) - float(np.abs(axis) @ (high - low) / 2)  # from the object's centre to its near face
        if beside < reach_across + NEIGHBOUR_BAND and 0 < gap < nearest:
            nearest, side = gap, np.sign(along)
    if room <= 0 or nearest > NEIGHBOUR_DISTANCE:
        return None
    return -side * room * axis


def placing(step: SubGoal, plan: TaskPlan, view: PrivilegedView) -> Placing:
    target, destination = (plan.entity(name) for name in step.args)
    center = view.position(target).copy()
    goal = view.position(destination).copy()
    index = plan.steps.index(step)
    slot_direction = None
    if index in plan.slots:
        offset = slot_offset(view.box(destination), *plan.slots[index])
        goal += offset
        slot_direction = offset[:2] / np.linalg.norm(offset[:2])
    clear = view.box(destination)[1][2]
    if step.args[1] in plan.containers:
        clear = max(clear, view.box(plan.entity(plan.containers[step.args[1]]))[1][2])
    door = door_of(step.args[1], plan, view) if step.predicate == "in" else None
    opening = None if door is None else Opening.of(door)
    grasp, box = grasp_for(step.kind, through_door=opening is not None), view.box(target)
    return Placing(grasp, center, view.quaternion(target).copy(), box, goal, view.box(destination),
                   step.predicate == "in", float(view.position(target, at=0)[2] - center[2]), float(clear),
                   slot_direction, None if grasp.yaw is not None else finger_shift(plan, view, target, box),
                   opening)


def door_of(destination: str, plan: TaskPlan, view: PrivilegedView) -> Mechanism | None:
    """The hinged door of the container `destination` belongs to (the microwave's), else None."""
    container = plan.containers.get(destination)
    if container not in plan.mechanisms:
        return None
    mechanism = view.mechanism(plan.mechanism(container))
    return mechanism if mechanism.hinged else None


def grasp_yaw(place: Placing) -> float | None:
    """Hand yaw (rad) for the grasp: a rim grasp's quarter turn, the object's finger axis, or None."""
    direction = place.finger_direction
    if direction is None:
        return place.grasp.yaw if place.grasp.yaw is not None else across_narrow_side(place.box)
    return wrap_half_turn(direction - np.pi / 2)  # the fingers close along (-sin yaw, cos yaw)


def across_narrow_side(box: tuple[np.ndarray, np.ndarray]) -> float | None:
    """Hand yaw (rad) that closes the fingers across the narrower horizontal side of an elongated object's
    box (low, high): the open hand spans ~8 cm, as long as a lying pudding box, whose top it would land on;
    None (the yaw left as it is) for an object about as wide as long (a can)."""
    width = (box[1] - box[0])[:2]
    if max(width) < ELONGATED * min(width):
        return None
    return 0.0 if width[1] < width[0] else np.pi / 2  # yaw 0: the fingers close along world y


def wrap_half_turn(angle: float) -> float:
    """`angle` (rad) in (-pi/2, pi/2]: the fingers are symmetric, so yaw and yaw + pi grasp alike."""
    return float(-((-angle + np.pi / 2) % np.pi) + np.pi / 2)


def hold_radius(grasp: GraspSpec) -> float:
    """Largest fingers - grasp point distance (m) at which the object counts as held: a bowl held
    by its rim tilts, which moves the rim point computed from its upright pose."""
    return HOLD_RADIUS + grasp.rim_radius


def is_holding(place: Placing, hand: Hand) -> bool:
    """Whether the hand holds the object of `place` (closed on something, at its grasp point)."""
    return (place.grasp.empty_gap < hand.gap < OPEN_GAP and not hand.closing
            and np.linalg.norm(place.grasp_point - hand.eef) < hold_radius(place.grasp))


def is_engaged(step: SubGoal, plan: TaskPlan, hand: Hand, view: PrivilegedView) -> bool:
    """Whether the hand holds ``step.args[0]`` or is coming down onto its grasp point."""
    place = placing(step, plan, view)
    grasp = place.grasp_point
    descending = np.linalg.norm((grasp - hand.eef)[:2]) < 2 * XY_TOLERANCE and hand.eef[2] < grasp[2] + 0.12
    return descending or is_holding(place, hand)


def pick_place(step: SubGoal, plan: TaskPlan, hand: Hand, view: PrivilegedView) -> np.ndarray:
    """(7,) action moving ``step.args[0]`` onto / into ``step.args[1]``."""
    recovery = upright_recovery(hand)
    if recovery is not None:
        return recovery
    place = placing(step, plan, view)
    grasp, rotate = place.grasp_point, rotation_action(hand.ori, grasp_yaw(place))
    to_grasp = np.linalg.norm(grasp - hand.eef)
    if is_holding(place, hand):
        return carry(place, carrying_rotation(place, hand))
    if hand.closing:
        return action(np.zeros(3), rotate, close=True)
    if to_grasp < AT_GRASP:
        if hand.gap <= place.grasp.empty_gap:  # closed on nothing: open and try again from above
            return action(np.array([0.0, 0.0, 0.5]), rotate, close=False)
        return action(np.zeros(3), rotate, close=True)
    if np.linalg.norm((place.center - place.destination)[:2]) < 0.03 and place.center[2] < place.destination[2] + 0.1:
        above = np.r_[hand.eef[:2], place.destination[2] + CARRY_CLEARANCE]  # placed: open, rise and wait
        return action(GAIN * (above - hand.eef), rotate, close=False)
    return approach(hand, grasp, rotate, standing_under(hand, plan, view, exclude=step.args[0]))


def standing_under(hand: Hand, plan: TaskPlan, view: PrivilegedView, exclude: str) -> float:
    """Top (m) of the highest plan entity other than `exclude` whose box, widened by `UNDER_MARGIN`, is
    under the hand (a basket the hand just dropped something into); -inf when there is none."""
    tops = [-np.inf]
    for row, name in enumerate(plan.entities):
        low, high = view.box(row)
        over = np.all(hand.eef[:2] > low[:2] - UNDER_MARGIN) and np.all(hand.eef[:2] < high[:2] + UNDER_MARGIN)
        if name != exclude and over:
            tops.append(float(high[2]))
    return max(tops)


def approach(hand: Hand, grasp: np.ndarray, rotate: np.ndarray, under: float = -np.inf) -> np.ndarray:
    """Open, rise (clear of `under`, the top of what stands under the hand), move above the grasp point
    while turning the hand, then descend onto it."""
    eef = hand.eef
    above = grasp + np.array([0.0, 0.0, 0.10])
    xy_error = np.linalg.norm((grasp - eef)[:2])
    if not hand.is_open:  # open before anything else (the fingers may still hold or touch something)
        return action(np.array([0.0, 0.0, 0.3]) if xy_error > 0.02 else np.zeros(3), rotate, close=False)
    if xy_error > XY_TOLERANCE and eef[2] < under + UNDER_CLEARANCE:  # straight up, out of the basket first
        return action(at_least(GAIN * np.r_[0.0, 0.0, under + UNDER_CLEARANCE + 0.01 - eef[2]], 0.3), rotate,
                      close=False)
    if xy_error > XY_TOLERANCE:
        target = above if eef[2] > grasp[2] + 0.06 else np.r_[eef[:2], above[2]]
        return action(at_least(GAIN * (target - eef), MIN_XY_ACTION), rotate, close=False)
    if np.abs(rotate).max() > ROTATION_GAIN * YAW_TOLERANCE:  # still turning: wait above the grasp point
        return action(GAIN * (np.r_[grasp[:2], max(eef[2], grasp[2] + 0.06)] - eef), rotate, close=False)
    return action(GAIN * (grasp - eef), rotate, close=False)


def above_object(place: Placing) -> bool:
    """Whether the destination is above the object's top (a drawer, a shelf, a cabinet top): what it
    stands on may overhang the object, which then backs away from it while rising."""
    return bool(place.destination[2] > place.box[1][2] + 0.02)


def carrying_rotation(place: Placing, hand: Hand) -> np.ndarray:
    """(3,) rotation action while carrying: the grasp's yaw, or for an object to go into a narrow slot,
    the yaw that turns its finger axis across the slot's narrow side (read off the object itself)."""
    direction = place.finger_direction
    if direction is None:
        return rotation_action(hand.ori, place.grasp.yaw)
    if place.slot_direction is not None:  # sharing the destination: the hand must not end over the others
        return rotation_action(hand.ori, hand_yaw(hand.ori) + turn_hold_outward(place))
    if not place.grasp.align_to_slot:
        return rotation_action(hand.ori, hand_yaw(hand.ori))
    low, high = place.destination_box
    half = (high - low)[:2] / 2
    if half.min() > SLOT_WIDTH / 2:  # roomy: keep the object as it is held
        return rotation_action(hand.ori, hand_yaw(hand.ori))
    across = 0.0 if half[0] < half[1] else np.pi / 2  # world angle of the slot's narrow side
    return rotation_action(hand.ori, hand_yaw(hand.ori) + wrap_half_turn(across - direction))


def turn_hold_outward(place: Placing) -> float:
    """Yaw (rad) to turn an object held off its centre (a moka pot by its handle) so that the hand, which
    hangs it from its grasp point, stays at least a quarter turn away from the destination's centre, where
    the objects placed before stand; 0 when it already is."""
    hold = (place.grasp_point - place.center)[:2]
    inward = -place.slot_direction
    angle = float(np.arctan2(hold[0] * inward[1] - hold[1] * inward[0], hold @ inward))  # hold -> inward
    if abs(angle) >= np.pi / 2 or np.linalg.norm(hold) < 1e-6:
        return 0.0
    return -(np.sign(angle) or 1.0) * (np.pi / 2 - abs(angle))


def carry(place: Placing, rotate: np.ndarray) -> np.ndarray:
    """Holding: rise, move the object's centre above the destination, lower it, open. The object
    hangs where it was grasped, so the fingers move by the object's errors. Heights follow the grasp's
    `release_clearance` (by the object's box: its bottom over the destination's box) when set, else its
    `carry_height` / `release_height` above the destination's position."""
    if place.door_opening is not None:
        release = place.support + (place.grasp.release_clearance or 0.0)
        return carry_through_door(place.center, place.bottom, place.destination_box, place.door_opening,
                                  release, place.rests_by(release), rotate)
    if place.grasp.release_clearance is not None:
        return carry_by_box(place, rotate)
    return carry_by_heights(place, rotate)


def rise_on(height: float, ceiling: float, xy_error: np.ndarray) -> np.ndarray:
    """(3,) move of a held object picked up above its travel height: straight up to near `ceiling` (m),
    then towards the destination (`xy_error` (2,) away) while rising on to it, never sinking. Straight up
    first, out of a drawer or off a shelf: sideways, its wall knocks a bowl out of the fingers."""
    xy_scale = 0.03 if height < ceiling - 0.05 else 1.0
    return GAIN * np.r_[xy_scale * xy_error, min(height + 0.05, ceiling) - height]


def carry_by_box(place: Placing, rotate: np.ndarray) -> np.ndarray:
    """Carry with the object's bottom `BOX_CLEARANCE` above the destination's box and its container's (a
    caddy's walls), then lower it until its
    bottom is `release_clearance` above what it goes on (or it stops sinking), and open."""
    low, high = place.box
    center, destination, bottom = (low + high) / 2, place.destination, place.bottom
    reference = place.center if place.grasp.place_by_origin else center  # a book's body position is at its spine
    xy_error = (destination - reference)[:2]
    lift = place.clear_height + BOX_CLEARANCE
    lowering = bottom < lift - 0.02 and np.linalg.norm(xy_error) < LOWERING_TOLERANCE  # on the way down: keep going
    if np.linalg.norm(xy_error) > place.xy_tolerance and not lowering:
        if bottom < lift - 0.02:  # rise, away from a destination above the object
            xy_scale = -BACK_OFF if above_object(place) else 0.2
            return action(GAIN * np.r_[xy_scale * xy_error, lift - bottom], rotate, close=True)
        if bottom <= lift + PICKED_ABOVE:
            return action(GAIN * np.r_[xy_error, lift - bottom], rotate, close=True)
        # picked up above the travel height (off a microwave's roof): sinking on the way would drag the
        # object over what it stood on
        return action(rise_on(bottom, place.clear_height + CARRY_CEILING, xy_error), rotate, close=True)
    release = place.support + place.grasp.release_clearance
    if bottom > release + 0.005 and not place.rests_by(release):
        return action(np.r_[GAIN * xy_error, max(GAIN * (release - bottom), -MAX_LOWERING)], rotate, close=True)
    return action(np.array([0.0, 0.0, place.grasp.release_lift]), rotate, close=False)


def carry_by_heights(place: Placing, rotate: np.ndarray) -> np.ndarray:
    """The grasp point `carry_height` above the destination while travelling; released at
    `release_height`. An object picked up above the carry height (e.g. from a cabinet top) keeps rising
    while it travels, never sinking into what it stood on. It is released at the release height, or
    lower down once it stops sinking (a tilted bowl rests on the plate's rim before the fingers get
    there)."""
    grasp, center, destination, spec = place.grasp_point, place.center, place.destination, place.grasp
    xy_error = (destination - center)[:2]
    carry_z = destination[2] + spec.carry_height  # high enough that the object clears the basket
    if np.linalg.norm(xy_error) > place.xy_tolerance:
        if grasp[2] < carry_z - 0.03:  # rise
            # Towards a destination above the object (a drawer, a shelf, a cabinet top), back away from it while
            # rising: what it stands on overhangs the space in front of it (an opened drawer over a bowl).
            xy_scale = -BACK_OFF if above_object(place) else 0.2
            return action(GAIN * np.r_[xy_scale * xy_error, carry_z - grasp[2]], rotate, close=True)
        if grasp[2] <= carry_z + 0.03:
            return action(GAIN * np.r_[xy_error, carry_z - grasp[2]], rotate, close=True)
        return action(rise_on(grasp[2], destination[2] + CARRY_CEILING, xy_error), rotate, close=True)
    release_z = destination[2] + spec.release_height
    resting = grasp[2] < release_z + RESTING_BAND and place.sinking < RESTING_SPEED
    if grasp[2] > release_z + 0.01 and not resting:
        return action(GAIN * np.r_[xy_error, release_z - grasp[2]], rotate, close=True)
    return action(np.array([0.0, 0.0, spec.release_lift]), rotate, close=False)
