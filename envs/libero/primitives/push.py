"""Push: slide a flat object (a plate) over the table into a region, never lifting it.

A plate is too flat to grasp (its rim is under 2 cm tall: fingers low enough to hold it would hit the
table), and its collision model is a ring of overlapping boxes with no dish to hook into. So the
closed fingers go down on the table just behind the plate, on the far side from the region, and move
towards the region, pressing down so that they stay below the rim; the hand steers back onto the line
from the plate's centre to the region whenever the plate slides off it. The hand leans over the plate
(fingertips pointing down and back, `LEAN`): upright, its 7-cm-thick palm would stick out behind the
plate into whatever stands there (libero_goal's cabinet handles are 3.5 cm behind the plate's rim).
Stateless: behind the plate and low, or not, is read off the window every step.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from envs.libero.plan import SubGoal, TaskPlan
from envs.libero.primitives.motion import (
    GAIN, ROTATION_GAIN, Hand, action, at_least, orientation_error, rotation_action,
)
from envs.libero.privileged import PrivilegedView

BEHIND = 0.088  # horizontal distance (m) from the plate's centre at which the fingers go down (rim 0.073)
LEAN = np.radians(45)  # tilt of the hand from pointing down, fingertips towards where it pushes from
LOW = 0.04  # grip site below this height above the plate's body position: low enough to push
ABOVE = 0.08  # height (m) above the plate at which the hand travels to the point behind it
ON_LINE = 0.02  # lateral distance (m) from the push line within which the hand keeps pushing
PUSH_SPEED = 0.5  # horizontal action (units) along the push line while pushing
STEER_GAIN = 2 * GAIN  # lateral correction gain while pushing (units per metre off the line)
PUSH_HEIGHT = -0.005  # grip site target relative to the plate's body position (its bottom) while pushing: a
# little below what the hand reaches, so that it leans lightly on the table and stays under the rim
CLOSED_GAP = 0.01  # finger gap (m) below which the fingers count as closed
DONE_RADIUS = 0.01  # the plate's centre within this distance (m) of the region's: stop pushing


def push(step: SubGoal, plan: TaskPlan, hand: Hand, view: PrivilegedView) -> np.ndarray:
    """(7,) action sliding ``step.args[0]`` into region ``step.args[1]``."""
    plate = view.position(plan.entity(step.args[0]))
    region = view.position(plan.entity(step.args[1]))
    to_region = (region - plate)[:2]
    if np.linalg.norm(to_region) < DONE_RADIUS:  # there (LIBERO's check decides): wait above
        rotate = rotation_action(hand.ori, None)
        return action(GAIN * (np.r_[hand.eef[:2], plate[2] + ABOVE] - hand.eef), rotate, close=True)
    direction = np.r_[to_region / np.linalg.norm(to_region), 0.0]
    rotate = ROTATION_GAIN * orientation_error(hand.ori, leaning_pose(direction))
    if hand.gap > CLOSED_GAP:  # close first, rising clear of the plate if down beside it
        lift = 0.3 if hand.eef[2] < plate[2] + ABOVE / 2 else 0.0
        return action(np.array([0.0, 0.0, lift]), rotate, close=True)
    offset = hand.eef - plate
    along = offset @ direction
    lateral = np.r_[offset[:2], 0.0] - along * direction
    low = hand.eef[2] < plate[2] + LOW
    if low and np.linalg.norm(lateral) < ON_LINE and -BEHIND - 0.03 < along < -0.03:
        move = PUSH_SPEED * direction - STEER_GAIN * lateral
        return action(np.r_[move[:2], GAIN * (plate[2] + PUSH_HEIGHT - hand.eef[2])], rotate, close=True)
    behind = plate - BEHIND * direction
    if np.linalg.norm((behind - hand.eef)[:2]) > 0.01:  # travel above the point behind the plate
        target = np.r_[behind[:2], max(hand.eef[2], plate[2] + ABOVE)]
        if hand.eef[2] < plate[2] + ABOVE - 0.03:
            target[:2] = hand.eef[:2]  # rise first, off the table and clear of the plate
        return action(at_least(GAIN * (target - hand.eef), 0.25), rotate, close=True)
    return action(GAIN * (np.r_[behind[:2], plate[2] + PUSH_HEIGHT] - hand.eef), rotate, close=True)


def leaning_pose(direction: np.ndarray) -> Rotation:
    """The hand pointing down and back against the push `direction` (3,) by `LEAN`, its wide side (the
    fingers' closing axis) level and across the push line."""
    pointing = -np.sin(LEAN) * direction + np.cos(LEAN) * np.array([0.0, 0.0, -1.0])
    across = np.cross(np.array([0.0, 0.0, 1.0]), direction)
    return Rotation.from_matrix(np.c_[np.cross(across, pointing), across, pointing])
