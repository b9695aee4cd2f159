"""Drawers, doors and knobs: open and close by the handle, turn knobs on and off.

Handles (`pull_handle`, `push_handle`). A drawer's handle bar stands only ~1.6 cm off the drawer front,
less than a Panda finger is thick, and the hand is wider than the gap between the bar and the cabinet
top, so a hand pointing down can neither hook nor grasp it. The hand is turned level instead, pointing
at the handle against its opening direction u (``obs.privileged``'s mechanism block), and:
    open   pinches the bar across its long axis (a drawer's horizontal bar from above and below, the
           microwave's upright bar from both sides) and pulls along u, which for a door turns with the
           door; the hand turns with it;
    close  pushes the front of the bar with the closed fingertips against u, the hand pointing down and
           leaning back, its wide side level: clear of the table, of the cabinet's top and of the handles
           above a bottom drawer (level and pointing left, the arm cannot reach a drawer on its left).
Knobs (`turn_knob`): the stove knob is a fin on a disc turned about the vertical; the hand points down,
takes the fin across its thin side and turns its yaw until LIBERO's TurnOn / TurnOff check holds.

Stateless like every primitive: holding, closing, aligned or not is read off the window every step.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from envs.libero.plan import SubGoal, TaskPlan
from envs.libero.primitives.motion import (
    DOWN, GAIN, ROTATION_GAIN, Hand, action, at_least, hand_yaw, orientation_error, rotation_action,
)
from envs.libero.privileged import Mechanism, PrivilegedView

FINGER_REACH = 0.013  # fingertips' end beyond the grip site, along the pointing direction (m)
HANDLE_DEPTH = 0.01  # half-depth of a handle bar along its opening direction (m)
HELD_GAP = (0.008, 0.045)  # finger gap (m) while a handle bar or a knob's fin is held
PRE_DISTANCE = 0.05  # the hand lines up this far in front of the handle before going in (m): further out,
# it comes down onto what stands in front of a drawer (a wine bottle in KITCHEN_SCENE4)
TRAVEL_CLEARANCE = 0.10  # height above the line-up point at which the hand travels to it (m)
AT_HANDLE = 0.008  # grip site - handle distance (m) at which the fingers close on the bar
LINED_UP = 0.01  # lateral distance (m) from the handle's line within which the hand goes straight in
ALIGNED = 0.15  # orientation error (rad) below which the hand counts as turned
PULL_LEAD = 0.035  # how far ahead of the handle the hand aims while pulling (m)
PUSH_LEAD = 0.03  # how far behind the handle's front the fingertips aim while pushing (m)
PUSH_EFFORT = 0.6  # smallest push (action units) against the opening direction: LIBERO counts a drawer
# closed only once it is pressed a little past its closed stop (joint > 0)
PUSH_LATERAL = 0.03  # distance (m) from the push line within which the hand keeps pushing
DOOR_PUSH_FRACTION = 0.7  # where a door is pushed shut: this fraction of the way from its hinge to its handle
DOOR_PUSH_HEIGHT = 0.07  # height (m) above the handle's centre at which a door is pushed (its top ~0.09)
DOOR_PUSH_LEAN = np.radians(30)  # the hand leans over the door it pushes: the wrist stays off the robot's base
PUSH_LEAN = np.radians(20)  # tilt of the pushing hand from pointing down, fingertips towards the handle: the
# palm then clears the handles above a bottom drawer; more, and the wrist meets what stands behind the hand
PUSH_BELOW = 0.008  # a drawer is pushed this far below its handle's centre (m): the last millimetres to its
# closed stop bring the palm against the drawer above
KNOB_GRASP_HEIGHT = 0.035  # grip site above the knob's joint anchor when holding its fin (m)
KNOB_TURN = 0.5  # yaw (rad) the hand aims ahead of itself while turning a knob
UP = np.array([0.0, 0.0, 1.0])


def open_mechanism(step: SubGoal, plan: TaskPlan, hand: Hand, view: PrivilegedView) -> np.ndarray:
    """(7,) action opening the drawer or door ``step.args[0]`` by its handle."""
    return pull_handle(view.mechanism(plan.mechanism(step.args[0])), hand)


def close_mechanism(step: SubGoal, plan: TaskPlan, hand: Hand, view: PrivilegedView) -> np.ndarray:
    """(7,) action closing the drawer or door ``step.args[0]`` by pushing its handle."""
    return push_handle(view.mechanism(plan.mechanism(step.args[0])), hand)


def turn_on(step: SubGoal, plan: TaskPlan, hand: Hand, view: PrivilegedView) -> np.ndarray:
    """(7,) action turning the knob of ``step.args[0]`` towards on."""
    return turn_knob(view.mechanism(plan.mechanism(step.args[0])), hand, direction=1.0)


def turn_off(step: SubGoal, plan: TaskPlan, hand: Hand, view: PrivilegedView) -> np.ndarray:
    """(7,) action turning the knob of ``step.args[0]`` towards off."""
    return turn_knob(view.mechanism(plan.mechanism(step.args[0])), hand, direction=-1.0)


def hand_pose(pointing: np.ndarray, closing_axis: np.ndarray) -> Rotation:
    """The hand pointing along `pointing` (3,), fingers closing along ±`closing_axis` (3,). Of the two
    signs, the fingers' axis towards the robot's front (+x) when it is nearly level and forward, else
    the one nearer the reset pose: the other ends at the wrist's joint limit (measured)."""
    pointing = pointing / np.linalg.norm(pointing)
    closing_axis = closing_axis / np.linalg.norm(closing_axis)
    if abs(closing_axis[0]) > 0.5:
        signs = (np.sign(closing_axis[0]),)
    else:
        signs = min((1.0, -1.0), key=lambda s: (_pose(pointing, s * closing_axis) * DOWN.inv()).magnitude()),
    return _pose(pointing, signs[0] * closing_axis)


def _pose(pointing: np.ndarray, fingers: np.ndarray) -> Rotation:
    return Rotation.from_matrix(np.c_[np.cross(fingers, pointing), fingers, pointing])


def horizontal(vector: np.ndarray) -> np.ndarray:
    """`vector` (3,) without its vertical part, unit length (zeros if it was vertical)."""
    flat = np.r_[vector[:2], 0.0]
    norm = np.linalg.norm(flat)
    return flat / norm if norm > 1e-9 else flat


def pinch_axis(mechanism: Mechanism, opening: np.ndarray) -> np.ndarray:
    """Unit axis the fingers close along to pinch the handle bar: across its long axis and level with u,
    vertical for a drawer's horizontal bar, horizontal for an upright door bar."""
    across = np.cross(mechanism.handle_axis, opening)
    norm = np.linalg.norm(across)
    return across / norm if norm > 1e-6 else np.cross(UP, opening)


def pull_handle(mechanism: Mechanism, hand: Hand) -> np.ndarray:
    """Pinch the handle bar with the hand level and pull it along its opening direction."""
    opening = horizontal(mechanism.opening)
    pose = hand_pose(-opening, pinch_axis(mechanism, opening))
    error = orientation_error(hand.ori, pose)
    rotate = ROTATION_GAIN * error
    to_handle = hand.eef - mechanism.handle
    if HELD_GAP[0] < hand.gap < HELD_GAP[1] and not hand.closing and np.linalg.norm(to_handle) < 0.02:
        return action(GAIN * (mechanism.handle + PULL_LEAD * opening - hand.eef), rotate, close=True)
    if hand.closing:
        return action(np.zeros(3), rotate, close=True)
    aligned = np.linalg.norm(error) < ALIGNED
    if hand.is_open and aligned and np.linalg.norm(to_handle) < AT_HANDLE:
        return action(np.zeros(3), rotate, close=True)
    if not hand.is_open:  # let go of whatever the fingers hold, backing away from the handle
        return action(0.3 * opening, rotate, close=False)
    return line_up_and_reach(hand, mechanism.handle, opening, rotate, aligned, close=False)


def push_handle(mechanism: Mechanism, hand: Hand) -> np.ndarray:
    """Push the front of the handle bar with the closed fingertips against the opening direction until
    LIBERO's Close check holds, the hand leaning back (`PUSH_LEAN`) so that the palm stays clear of the
    cabinet's top and of the handles above a bottom drawer."""
    opening = horizontal(mechanism.opening)
    pushed, lean = mechanism.handle - np.r_[0.0, 0.0, PUSH_BELOW], PUSH_LEAN
    if mechanism.hinged:  # a door: pushed near its top edge, part way to its handle, the palm leaning over it
        pushed = mechanism.anchor + DOOR_PUSH_FRACTION * (mechanism.handle - mechanism.anchor)
        pushed[2] = mechanism.handle[2] + DOOR_PUSH_HEIGHT
        lean = -DOOR_PUSH_LEAN
    pointing = -np.sin(lean) * opening - np.cos(lean) * UP
    pose = hand_pose(pointing, np.cross(UP, opening))
    error = orientation_error(hand.ori, pose)
    rotate = ROTATION_GAIN * error
    # grip site when the fingertips' ends touch the front of the bar
    contact = pushed + HANDLE_DEPTH * opening - FINGER_REACH * pointing
    along = (hand.eef - contact) @ opening
    lateral = (hand.eef - contact) - along * opening
    # Once pushing, a door's turning moves the contact sideways and turns the hand's target pose:
    # looser tolerances keep the hand pushing instead of lining up again.
    if (np.linalg.norm(error) < 2 * ALIGNED and hand.gap < HELD_GAP[0] and np.linalg.norm(lateral) < PUSH_LATERAL
            and -0.03 < along < PRE_DISTANCE + 0.03):
        push = GAIN * (contact - PUSH_LEAD * opening - hand.eef)
        push = push - max(0.0, push @ opening + PUSH_EFFORT) * opening  # at least PUSH_EFFORT against u
        return action(push, rotate, close=True)
    return line_up_and_reach(hand, contact, opening, rotate, np.linalg.norm(error) < ALIGNED, close=True)


def line_up_and_reach(hand: Hand, point: np.ndarray, opening: np.ndarray, rotate: np.ndarray, aligned: bool,
                      close: bool) -> np.ndarray:
    """Travel to the line-up point `PRE_DISTANCE` in front of `point` along `opening` (above it first,
    then down, turning the hand on the way), then go straight in to `point` once turned and on line.
    Fingers: closed if `close`, else open."""
    pre = point + PRE_DISTANCE * opening
    along = (hand.eef - point) @ opening
    lateral = np.linalg.norm((hand.eef - point) - along * opening)
    if aligned and lateral < LINED_UP and 0.0 < along < PRE_DISTANCE + 0.03:
        return action(GAIN * (point - hand.eef), rotate, close=close)
    if np.linalg.norm((pre - hand.eef)[:2]) > 0.03:  # travel above the line-up point
        travel = np.r_[pre[:2], max(pre[2] + TRAVEL_CLEARANCE, hand.eef[2])]
        if hand.eef[2] < pre[2] + TRAVEL_CLEARANCE - 0.03:
            travel[:2] = hand.eef[:2]  # rise first, clear of what the hand stands among
        return action(at_least(GAIN * (travel - hand.eef), 0.25), rotate, close=close)
    return action(GAIN * (pre - hand.eef), rotate, close=close)


def turn_knob(mechanism: Mechanism, hand: Hand, direction: float) -> np.ndarray:
    """Take the knob's fin with the hand pointing down and turn the hand's yaw by `direction` (+1: the
    way that turns it on) until the predicate holds."""
    fin = mechanism.handle - mechanism.anchor
    fin_yaw = float(np.arctan2(fin[1], fin[0]))
    grasp_yaw = (fin_yaw + np.pi / 2) % np.pi - np.pi / 2  # fingers across the fin; the nearer of the two
    grasp = np.r_[mechanism.anchor[:2], mechanism.anchor[2] + KNOB_GRASP_HEIGHT]
    distance = np.linalg.norm(grasp - hand.eef)
    if HELD_GAP[0] < hand.gap < HELD_GAP[1] and not hand.closing and distance < 0.02:
        rotate = rotation_action(hand.ori, hand_yaw(hand.ori) + direction * KNOB_TURN)
        return action(GAIN * (grasp - hand.eef), rotate, close=True)
    rotate = rotation_action(hand.ori, grasp_yaw)
    if hand.closing:
        return action(np.zeros(3), rotate, close=True)
    if hand.is_open and distance < AT_HANDLE:
        return action(np.zeros(3), rotate, close=True)
    if not hand.is_open:
        return action(np.array([0.0, 0.0, 0.3]), rotate, close=False)
    xy_error = np.linalg.norm((grasp - hand.eef)[:2])
    if xy_error > 0.006:
        target = np.r_[grasp[:2], max(hand.eef[2], grasp[2] + 0.06)]
        return action(at_least(GAIN * (target - hand.eef), 0.25), rotate, close=False)
    return action(GAIN * (grasp - hand.eef), rotate, close=False)
