"""The scripted LIBERO expert: one ChunkPolicy for every task, driven by the task's BDDL goal.

Design. The policy batch carries no simulator handle, so the LIBERO env exposes the ground truth an
expert needs as one more observation key, ``obs.privileged`` (`envs.libero.privileged`): poses of the
plan's entities, handles and joints of its drawers, doors and knobs, and whether each plan step's
predicate holds, by LIBERO's own checks. Learned policies never read that key and the demo writer never
stores it.

What it knows per task comes from the BDDL goal, read once in the constructor (no env built) and turned
into a `envs.libero.plan.TaskPlan`: ordered sub-goals, each with its primitive (`envs.libero.primitives`:
pick-and-place by object kind, push, open / close a drawer or door by its handle, turn a knob on / off),
and preconditions (a container opened before something is put in). It keeps no rollout state (the
engine batches many episodes through one policy object): every step it works on the first goal
predicate not yet satisfied, or satisfied with its object still in the hand (or that predicate's unmet
precondition), and the primitive reads its phase
off the observation window (To = 2).

A task whose goal has no primitive is named in the log (and in `unplanned`) when the expert is built; the
expert holds still there and its episodes fail, visibly.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from common.schema import OBS_STATE, TASK_INDEX, Task
from envs.libero.env import OBS_PRIVILEGED
from envs.libero.plan import TaskPlan, UnplannableGoalError, plan_problem
from envs.libero.primitives import PRIMITIVE_FUNCTIONS, committed, in_hand
from envs.libero.primitives.motion import HOLD_STILL, Hand
from envs.libero.privileged import PrivilegedView

log = logging.getLogger(__name__)


def read_plan(task: Task) -> TaskPlan:
    """The TaskPlan of a benchmark task, from its BDDL file; UnplannableGoalError if it has none."""
    from libero.libero.envs import bddl_utils

    from envs.libero.benchmark import bddl_file

    return plan_problem(bddl_utils.robosuite_parse_problem(bddl_file(task.suite, task.index)), task.name)


class LiberoExpertPolicy:
    """Scripted expert for LIBERO tasks, batched over a mixed-task batch; see the module docstring.

    n_obs_steps = 2 (the finger gap's change tells whether the gripper is still closing, an object's
    drop whether it still sinks); returns chunks of one action.
    """

    n_obs_steps = 2
    n_action_steps = 1
    runs_in_worker = True  # cheap per-sample Python from privileged state: it runs beside its env

    def __init__(self, tasks: list[Task]):
        self.tasks = tasks
        self.plans: dict[int, TaskPlan | None] = {}
        self.unplanned: dict[str, str] = {}  # task name -> why the expert has no plan for it
        for task in tasks:
            try:
                self.plans[task.index] = read_plan(task)
            except UnplannableGoalError as error:
                self.plans[task.index] = None
                self.unplanned[task.name] = str(error)
                log.warning("no scripted expert, it will hold still: %s", error)

    def predict_action_chunk(self, batch: dict[str, Any]) -> np.ndarray:
        """obs.state (B, To, 8), obs.privileged (B, To, P), task.index (B,) -> actions (B, 1, 7)."""
        if OBS_PRIVILEGED not in batch:
            raise KeyError(f"the LIBERO expert needs {OBS_PRIVILEGED!r} (LiberoTaskEnv provides it)")
        states, privileged = np.asarray(batch[OBS_STATE]), np.asarray(batch[OBS_PRIVILEGED])
        actions = [expert_action(self.plans[int(i)], s, p)
                   for i, s, p in zip(batch[TASK_INDEX], states, privileged, strict=True)]
        return np.stack(actions).astype(np.float32)[:, None, :]


def expert_action(plan: TaskPlan | None, state: np.ndarray, privileged: np.ndarray) -> np.ndarray:
    """(7,) action for one episode: state (To, 8), privileged (To, P)."""
    if plan is None:
        return HOLD_STILL
    view = PrivilegedView.parse(privileged)
    hand = Hand.from_state(state)
    current = plan.current_step(view.satisfied[-1], lambda goal: committed(plan.steps[goal], plan, hand, view),
                                lambda goal: in_hand(plan.steps[goal], plan, hand, view))
    if current is None:  # every goal predicate holds (the episode ends here): let go and stay
        return HOLD_STILL
    step = plan.steps[current]
    return PRIMITIVE_FUNCTIONS[step.primitive](step, plan, hand, view)
