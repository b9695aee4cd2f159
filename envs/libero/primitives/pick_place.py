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
orientation is then servoed from ``obs.state``'s axis-angle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.libero.plan import SubGoal, TaskPlan
from envs.libero.primitives.grasps import GraspSpec, grasp_for
from envs.libero.primitives.motion import (
    GAIN, OPEN_GAP, ROTATION_GAIN, Hand, action, at_least, rotation_action, upright_recovery,
)
from envs.libero.privileged import PrivilegedView

AT_GRASP = 0.012  # distance (m) from the grasp point at which the fingers close
HOLD_RADIUS = 0.035  # distance (m) grasp point - fingers while the object is held
CARRY_CLEARANCE = 0.12  # height above the destination the fingers wait at once the object is placed (m)
XY_TOLERANCE = 0.015  # horizontal distance (m) to the grasp point below which the fingers descend
MIN_XY_ACTION = 0.25  # smallest horizontal action (units) while aligning: below it the OSC stalls short of the target
CARRY_CEILING = 0.35  # highest the grasp point rises above the destination while carrying (m)
RESTING_BAND = 0.04  # below this height (m) above the release height, an object that stopped sinking is let go
RESTING_SPEED = 5e-4  # sinking (m per step) below which a lowered object counts as resting on something
BACK_OFF = 0.3  # fraction of the horizontal error the object moves away from a higher destination while rising
YAW_TOLERANCE = 0.15  # yaw error (rad) below which the fingers descend to a rim


@dataclass(frozen=True)
class Placing:
    """One pick-and-place at one moment: positions (3,) world frame (m), and how far the object sank
    over the observation window (m)."""

    grasp: GraspSpec
    center: np.ndarray  # the object's body position
    destination: np.ndarray  # the destination's position (an object's body or a region site)
    sinking: float

    @property
    def grasp_point(self) -> np.ndarray:
        """(3,) world position the grip site goes to."""
        point = self.center + np.asarray(self.grasp.offset)
        point[0] -= self.grasp.rim_radius  # the rim wall on the robot's side sits between the fingers
        return point


def placing(step: SubGoal, plan: TaskPlan, view: PrivilegedView) -> Placing:
    target, destination = (plan.entity(name) for name in step.args)
    center = view.position(target).copy()
    return Placing(grasp_for(step.kind), center, view.position(destination).copy(),
                   float(view.position(target, at=0)[2] - center[2]))


def hold_radius(grasp: GraspSpec) -> float:
    """Largest fingers - grasp point distance (m) at which the object counts as held: a bowl held
    by its rim tilts, which moves the rim point computed from its upright pose."""
    return HOLD_RADIUS + grasp.rim_radius


def is_holding(step: SubGoal, plan: TaskPlan, hand: Hand, view: PrivilegedView) -> bool:
    """Whether the hand holds ``step.args[0]`` (closed on something, at its grasp point)."""
    place = placing(step, plan, view)
    return (place.grasp.empty_gap < hand.gap < OPEN_GAP and not hand.closing
            and np.linalg.norm(place.grasp_point - hand.eef) < hold_radius(place.grasp))


def is_engaged(step: SubGoal, plan: TaskPlan, hand: Hand, view: PrivilegedView) -> bool:
    """Whether the hand holds ``step.args[0]`` or is coming down onto its grasp point."""
    grasp = placing(step, plan, view).grasp_point
    descending = np.linalg.norm((grasp - hand.eef)[:2]) < 2 * XY_TOLERANCE and hand.eef[2] < grasp[2] + 0.12
    return descending or is_holding(step, plan, hand, view)


def pick_place(step: SubGoal, plan: TaskPlan, hand: Hand, view: PrivilegedView) -> np.ndarray:
    """(7,) action moving ``step.args[0]`` onto / into ``step.args[1]``."""
    recovery = upright_recovery(hand)
    if recovery is not None:
        return recovery
    place = placing(step, plan, view)
    grasp, rotate = place.grasp_point, rotation_action(hand.ori, place.grasp.yaw)
    to_grasp = np.linalg.norm(grasp - hand.eef)
    if is_holding(step, plan, hand, view):
        return carry(place, rotate)
    if hand.closing:
        return action(np.zeros(3), rotate, close=True)
    if to_grasp < AT_GRASP:
        if hand.gap <= place.grasp.empty_gap:  # closed on nothing: open and try again from above
            return action(np.array([0.0, 0.0, 0.5]), rotate, close=False)
        return action(np.zeros(3), rotate, close=True)
    if np.linalg.norm((place.center - place.destination)[:2]) < 0.03 and place.center[2] < place.destination[2] + 0.1:
        above = np.r_[hand.eef[:2], place.destination[2] + CARRY_CLEARANCE]  # placed: open, rise and wait
        return action(GAIN * (above - hand.eef), rotate, close=False)
    return approach(hand, grasp, rotate)


def approach(hand: Hand, grasp: np.ndarray, rotate: np.ndarray) -> np.ndarray:
    """Open, rise, move above the grasp point while turning the hand, then descend onto it."""
    eef = hand.eef
    above = grasp + np.array([0.0, 0.0, 0.10])
    xy_error = np.linalg.norm((grasp - eef)[:2])
    if not hand.is_open:  # open before anything else (the fingers may still hold or touch something)
        return action(np.array([0.0, 0.0, 0.3]) if xy_error > 0.02 else np.zeros(3), rotate, close=False)
    if xy_error > XY_TOLERANCE:
        target = above if eef[2] > grasp[2] + 0.06 else np.r_[eef[:2], above[2]]
        return action(at_least(GAIN * (target - eef), MIN_XY_ACTION), rotate, close=False)
    if np.abs(rotate).max() > ROTATION_GAIN * YAW_TOLERANCE:  # still turning: wait above the grasp point
        return action(GAIN * (np.r_[grasp[:2], max(eef[2], grasp[2] + 0.06)] - eef), rotate, close=False)
    return action(GAIN * (grasp - eef), rotate, close=False)


def carry(place: Placing, rotate: np.ndarray) -> np.ndarray:
    """Holding: rise, move the object's centre above the destination, lower it, open. The object
    hangs where it was grasped, so the fingers move by the object's errors. An object picked up
    above the carry height (e.g. from a cabinet top) keeps rising while it travels, never sinking
    into what it stood on. It is released at the release height, or lower down once it stops
    sinking (a tilted bowl rests on the plate's rim before the fingers get there)."""
    grasp, center, destination, spec = place.grasp_point, place.center, place.destination, place.grasp
    xy_error = (destination - center)[:2]
    carry_z = destination[2] + spec.carry_height  # high enough that the object clears the basket
    if np.linalg.norm(xy_error) > 0.012:
        if grasp[2] < carry_z - 0.03:  # rise
            # Towards a destination above the object (a drawer, a shelf, a cabinet top), back away from it while
            # rising: what it stands on overhangs the space in front of it (an opened drawer over a bowl).
            xy_scale = -BACK_OFF if center[2] < destination[2] + 0.05 else 0.2
            return action(GAIN * np.r_[xy_scale * xy_error, carry_z - grasp[2]], rotate, close=True)
        if grasp[2] <= carry_z + 0.03:
            return action(GAIN * np.r_[xy_error, carry_z - grasp[2]], rotate, close=True)
        ceiling = destination[2] + CARRY_CEILING  # picked up from above the carry height: rise on
        xy_scale = 0.2 if grasp[2] < ceiling - 0.05 else 1.0  # mostly up, out of a drawer or off a shelf
        return action(GAIN * np.r_[xy_scale * xy_error, min(grasp[2] + 0.03, ceiling) - grasp[2]], rotate,
                      close=True)
    release_z = destination[2] + spec.release_height
    resting = grasp[2] < release_z + RESTING_BAND and place.sinking < RESTING_SPEED
    if grasp[2] > release_z + 0.01 and not resting:
        return action(GAIN * np.r_[xy_error, release_z - grasp[2]], rotate, close=True)
    return action(np.array([0.0, 0.0, spec.release_lift]), rotate, close=False)
