"""Push: slide a flat object (a plate) over the table into a region, never lifting it.

A plate is too flat to grasp: its rim is nine slabs sloping up 19 degrees from where they rest on the
table (4 cm from the centre) to an edge 1.9 cm high, 7 cm out, with nothing to hook into. So the closed
fingers go down on the table just behind the plate, on the far side from the region, and only once down
(`LOW`) move towards the region, pressing down so that they stay below the edge: fingers still coming
down land on the rim and tip the plate up onto them. The hand steers back onto the line from the plate's
centre to the region whenever the plate slides off it. The hand leans over the plate (fingertips
pointing down and back, `LEAN`): upright, its 7-cm-thick palm would stick out behind the plate into
whatever stands there (libero_goal's cabinet handles are 3.5 cm behind the plate's rim; at 25 degrees the
hand already stops short of the point behind the plate, and 35 degrees pushed fewer plates home than 45).
Leaning, the fingers' face presses the rim's edge down as much as forward, which the plate (11.5 g, rim
resting on the table 3 cm inside its edge) sometimes answers by tipping up onto the fingers: the hand
then rises and starts again.
Another object of the scene standing in the plate's way (libero_goal's cream cheese box, 1.8 cm tall,
which the plate's rim rides up on) is first swept aside: the closed fingers, pointing down, go down
between it and the push line and move it across the line until it is clear of the plate's path
(`clear_the_way`). Stateless: behind the plate and low, or beside an object in the way and low, or not,
is read off the window every step.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from envs.libero.plan import SubGoal, TaskPlan
from envs.libero.primitives.motion import (
    GAIN, ROTATION_GAIN, Hand, action, at_least, orientation_error, rotation_action, yaw_for_closing_axis,
)
from envs.libero.privileged import PrivilegedView

BEHIND = 0.095  # horizontal distance (m) from the plate's centre at which the fingers go down (rim 0.073)
LEAN = np.radians(45)  # tilt of the hand from pointing down, fingertips towards where it pushes from
LOW = 0.025  # grip site below this height above the plate's body position: low enough to start pushing
# (higher, the fingers still coming down land on the rim and tip the plate up onto them) ...
STILL_LOW = 0.035  # ... and to go on pushing once the fingers have moved forward from behind the plate
STARTED = 0.012  # distance (m) forward from the point behind the plate beyond which the push has started
ABOVE = 0.08  # height (m) above the plate at which the hand travels to the point behind it
ON_LINE = 0.02  # lateral distance (m) from the push line within which the hand keeps pushing
PUSH_SPEED = 0.5  # horizontal action (units) along the push line while pushing
STEER_GAIN = 2 * GAIN  # lateral correction gain while pushing (units per metre off the line)
PUSH_HEIGHT = -0.005  # grip site target relative to the plate's body position (its bottom) while pushing: a
# little below what the hand reaches, so that it leans lightly on the table and stays under the rim
CLOSED_GAP = 0.01  # finger gap (m) below which the fingers count as closed
DONE_RADIUS = 0.01  # the plate's centre within this distance (m) of the region's: stop pushing
GRAZING = 0.03  # an object whose box reaches this far (m) into the plate's path is nudged aside by the plate
# (a bowl beside the path: its round body is up to 1.6 cm inside its box there); deeper, it is in the way
SWEPT_MARGIN = 0.01  # an object the fingers sweep aside is pushed on until this far (m) from the path
SWEEP_SPEED = 0.8  # horizontal action (units) across the push line while sweeping an object aside
SWEEP_ABOVE = 0.04  # height (m) above an object in the way at which the hand travels to its side
FINGER_CLEARANCE = 0.025  # horizontal distance (m) between the fingers and an object's box when they go down
SWEEP_HEIGHT = 0.005  # grip site target above the swept object's bottom (m): the fingertips on the table
SWEEP_LOW = 0.03  # grip site below this height (m) above the object's bottom: down beside it, sweeping


def push(step: SubGoal, plan: TaskPlan, hand: Hand, view: PrivilegedView) -> np.ndarray:
    """(7,) action sliding ``step.args[0]`` into region ``step.args[1]``."""
    plate = view.position(plan.entity(step.args[0]))
    region = view.position(plan.entity(step.args[1]))
    to_region = (region - plate)[:2]
    if np.linalg.norm(to_region) < DONE_RADIUS:  # there (LIBERO's check decides): wait above
        rotate = rotation_action(hand.ori, None)
        return action(GAIN * (np.r_[hand.eef[:2], plate[2] + ABOVE] - hand.eef), rotate, close=True)
    direction = np.r_[to_region / np.linalg.norm(to_region), 0.0]
    for name in plan.bystanders.get(plan.steps.index(step), ()):
        sweep = clear_the_way(hand, view, plan.entity(name), plan.entity(step.args[0]), region)
        if sweep is not None:
            return sweep
    rotate = ROTATION_GAIN * orientation_error(hand.ori, leaning_pose(direction))
    if hand.gap > CLOSED_GAP:  # close first, rising clear of the plate if down beside it
        lift = 0.3 if hand.eef[2] < plate[2] + ABOVE / 2 else 0.0
        return action(np.array([0.0, 0.0, lift]), rotate, close=True)
    offset = hand.eef - plate
    along = offset @ direction
    lateral = np.r_[offset[:2], 0.0] - along * direction
    started = along > -BEHIND + STARTED
    low = hand.eef[2] < plate[2] + (STILL_LOW if started else LOW)
    if low and np.linalg.norm(lateral) < ON_LINE and -BEHIND - 0.03 < along < -0.03:
        move = PUSH_SPEED * direction - STEER_GAIN * lateral
        return action(np.r_[move[:2], GAIN * (plate[2] + PUSH_HEIGHT - hand.eef[2])], rotate, close=True)
    behind = plate - BEHIND * direction
    if np.linalg.norm((behind - hand.eef)[:2]) > 0.01:  # travel above the point behind the plate
        target = np.r_[behind[:2], max(hand.eef[2], plate[2] + ABOVE)]
        if hand.eef[2] < plate[2] + ABOVE - 0.01:  # rise first, off the table and clear of the plate, not
            target[:2] = hand.eef[:2]  # turning yet: low, turning swings the fingers into what stands near
            rotate = np.zeros(3)
        return action(at_least(GAIN * (target - hand.eef), 0.25), rotate, close=True)
    return action(GAIN * (np.r_[behind[:2], plate[2] + PUSH_HEIGHT] - hand.eef), rotate, close=True)


def leaning_pose(direction: np.ndarray) -> Rotation:
    """The hand pointing down and back against the push `direction` (3,) by `LEAN`, its wide side (the
    fingers' closing axis) level and across the push line."""
    pointing = -np.sin(LEAN) * direction + np.cos(LEAN) * np.array([0.0, 0.0, -1.0])
    across = np.cross(np.array([0.0, 0.0, 1.0]), direction)
    return Rotation.from_matrix(np.c_[np.cross(across, pointing), across, pointing])


def clear_the_way(hand: Hand, view: PrivilegedView, obstacle: int, plate: int, region: np.ndarray
                  ) -> np.ndarray | None:
    """(7,) action sweeping entity row `obstacle` out of the path of entity row `plate` to `region`
    (3,), or None if it is not in the way: its box more than `GRAZING` inside the band the plate's disc
    covers between here and the region (while the fingers sweep it: less than `SWEPT_MARGIN` outside it),
    and lower than the plate's top. The fingers push it straight across the push line, away from the side
    of the line it stands on."""
    plate_low, plate_high = view.box(plate)
    low, high = view.box(obstacle)
    if low[2] > plate_high[2]:
        return None
    start = (plate_low + plate_high)[:2] / 2
    radius = float(np.max((plate_high - plate_low)[:2])) / 2
    length = float(np.linalg.norm(region[:2] - start))
    along_path = (region[:2] - start) / max(length, 1e-9)
    across_path = np.array([-along_path[1], along_path[0]])
    centre, half = (low + high)[:2] / 2, (high - low)[:2] / 2
    along, across = (centre - start) @ along_path, (centre - start) @ across_path
    reach_along, reach_across = np.abs(along_path) @ half, np.abs(across_path) @ half
    side = across_path * (1.0 if across >= 0 else -1.0)  # away from the line, on the object's side
    fingers = centre - side * (reach_across + FINGER_CLEARANCE)  # where the fingers go down
    behind = (hand.eef[:2] - centre) @ side  # the fingers' distance behind the object's centre
    off_line = (hand.eef[:2] - fingers) - ((hand.eef[:2] - fingers) @ side) * side
    sweeping = (hand.eef[2] < low[2] + SWEEP_LOW and np.linalg.norm(off_line) < 0.02
                and -reach_across - 2 * FINGER_CLEARANCE < behind < 0.0)
    margin = SWEPT_MARGIN if sweeping else -GRAZING
    in_path = -radius < along + reach_along and along - reach_along < length + radius
    if not in_path or abs(across) - reach_across >= radius + margin:
        return None
    yaw = yaw_for_closing_axis(side)
    rotate = rotation_action(hand.ori, yaw)
    if sweeping:
        move = SWEEP_SPEED * side - STEER_GAIN * off_line
        return action(np.r_[move, GAIN * (low[2] + SWEEP_HEIGHT - hand.eef[2])], rotate, close=True)
    if hand.gap > CLOSED_GAP:
        return action(np.zeros(3), rotate, close=True)
    if np.linalg.norm(fingers - hand.eef[:2]) > 0.01:  # travel above the point beside the object
        target = np.r_[fingers, max(hand.eef[2], high[2] + SWEEP_ABOVE)]
        if hand.eef[2] < high[2] + SWEEP_ABOVE - 0.02:
            target[:2] = hand.eef[:2]  # rise first
        return action(at_least(GAIN * (target - hand.eef), 0.25), rotate, close=True)
    return action(GAIN * (np.r_[fingers, low[2] + SWEEP_HEIGHT] - hand.eef), rotate, close=True)
