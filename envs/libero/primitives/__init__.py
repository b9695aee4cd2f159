"""Primitives of the LIBERO scripted expert: one function per kind of sub-goal.

Each takes the sub-goal (`envs.libero.plan.SubGoal`), the task's plan, the hand (`motion.Hand`, from
``obs.state``) and the privileged view (`envs.libero.privileged.PrivilegedView`) of one episode's
observation window, and returns one (7,) action. None keeps state: what phase it is in is read off
the observation window every step.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from envs.libero.plan import CLOSE, OPEN, PICK_PLACE, PUSH, TURN_OFF, TURN_ON, SubGoal, TaskPlan
from envs.libero.primitives.articulated import close_mechanism, open_mechanism, turn_off, turn_on
from envs.libero.primitives.motion import Hand
from envs.libero.primitives.pick_place import is_engaged, is_holding, pick_place, placing
from envs.libero.primitives.push import push
from envs.libero.privileged import PrivilegedView

Primitive = Callable[[SubGoal, TaskPlan, Hand, PrivilegedView], np.ndarray]
PRIMITIVE_FUNCTIONS: dict[str, Primitive] = {
    PICK_PLACE: pick_place, PUSH: push, OPEN: open_mechanism, CLOSE: close_mechanism, TURN_ON: turn_on,
    TURN_OFF: turn_off,
}


def committed(step: SubGoal, plan: TaskPlan, hand: Hand, view: PrivilegedView) -> bool:
    """Whether the expert is in the middle of `step` and should finish it even if a precondition lapsed:
    a pick-and-place whose object is in the hand or being taken (the hand nudged the drawer it goes into)."""
    return step.primitive == PICK_PLACE and is_engaged(step, plan, hand, view)


def in_hand(step: SubGoal, plan: TaskPlan, hand: Hand, view: PrivilegedView) -> bool:
    """Whether the object `step` moves is held: a pick-and-place is finished only once it is let go."""
    return step.primitive == PICK_PLACE and is_holding(placing(step, plan, view), hand)
