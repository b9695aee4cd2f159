"""Scripted LIBERO experts: pick-and-place from privileged simulator state, as a ChunkPolicy.

Design. The policy batch carries no simulator handle, so the LIBERO env exposes the ground
truth an expert needs as one more observation key, ``obs.privileged`` (28,): position and
quaternion of each entity named by the task's BDDL goal (e.g. the object and the basket's
region). Learned policies never read that key and the demo writer never stores it.

The expert keeps no rollout state (the engine batches many episodes through one policy
object): every step its phase is re-derived from the observation window (To = 2):
    held     the gripper is partly closed, not still closing, and the grasp point is at the
             fingers: carry the object above the destination, lower it, open;
    closing  the finger gap shrank since the last observation: keep closing in place;
    at grasp the fingers are at the grasp point: close;
    missed   the fingers closed on nothing at the grasp point: open and rise;
    placed   the object already sits at the destination: open and rise;
    else     approach: rise, move above the grasp point, descend (gripper open).
What it knows per task comes from the BDDL goal, read once in the constructor (no env built):
the goal predicate ``in``/``on`` (object, destination) and, per object kind, where to grasp.

Scripted: goals of one ``in``/``on`` predicate (libero_object's basket, libero_spatial's plate,
libero_goal's pick-and-place tasks). Tasks with other goals (open, turnon, two predicates) have no
script: the constructor logs them and the expert holds still there (the episodes fail, visibly).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from envs.libero_env import OBS_PRIVILEGED
from schema import OBS_STATE, TASK_INDEX, Task

log = logging.getLogger(__name__)

GAIN = 10.0  # action units per metre of position error (1 unit ~ 0.0125 m per step)
OPEN_GAP = 0.072  # finger gap (m) above which the gripper counts as open (fully open ~0.078)
EMPTY_GAP = 0.006  # finger gap below which the gripper closed on nothing (~0.002)
AT_GRASP = 0.012  # distance (m) from the grasp point at which the fingers close
HOLD_RADIUS = 0.035  # distance (m) grasp point - fingers while the object is held
CARRY_CLEARANCE = 0.12  # height above the destination the fingers wait at once the object is placed (m)


@dataclass(frozen=True)
class GraspSpec:
    """Where to hold an object, relative to its body position (world frame, metres)."""

    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rim_radius: float = 0.0  # > 0: grasp a rim this far from the centre, on the side facing the robot (y)
    release_height: float = 0.05  # height of the grasp point above the destination when releasing
    carry_height: float = 0.12  # height of the grasp point above the destination while carrying


# Body positions are object centres for the libero_object groceries and bottoms for bowls/plates.
GRASP_SPECS = {
    "akita_black_bowl": GraspSpec(offset=(0.0, 0.0, 0.038), rim_radius=0.047, release_height=0.06),
    "black_bowl": GraspSpec(offset=(0.0, 0.0, 0.038), rim_radius=0.047, release_height=0.06),
    "cream_cheese": GraspSpec(offset=(0.0, 0.0, 0.004), release_height=0.06),
    "butter": GraspSpec(offset=(0.0, 0.0, 0.004), release_height=0.06),
    "chocolate_pudding": GraspSpec(offset=(0.0, 0.0, 0.0), release_height=0.06),
    # Tall bottles and cartons: grasp high, or the palm (~6 cm above the grip site) hits their top.
    "salad_dressing": GraspSpec(offset=(0.0, 0.0, 0.045), release_height=0.09, carry_height=0.2),
    "ketchup": GraspSpec(offset=(0.0, 0.0, 0.045), release_height=0.09, carry_height=0.2),
    "milk": GraspSpec(offset=(0.0, 0.0, 0.035), release_height=0.08, carry_height=0.19),
    "orange_juice": GraspSpec(offset=(0.0, 0.0, 0.035), release_height=0.08, carry_height=0.19),
    "bbq_sauce": GraspSpec(offset=(0.0, 0.0, 0.02), release_height=0.07, carry_height=0.17),
}
DEFAULT_GRASP = GraspSpec()
PLACE_PREDICATES = ("in", "on")
HOLD_ACTION = np.array([0, 0, 0, 0, 0, 0, -1], dtype=np.float32)  # tasks without a script: stay still


def object_kind(name: str) -> str:
    """BDDL instance name -> object kind: ``akita_black_bowl_1`` -> ``akita_black_bowl``."""
    return name.rsplit("_", 1)[0] if name.rsplit("_", 1)[-1].isdigit() else name


@dataclass(frozen=True)
class PlacePlan:
    """One task's pick-and-place: rows of obs.privileged for the object and its destination."""

    object_row: int
    destination_row: int
    grasp: GraspSpec


def plan_for(goal_state: list[list[str]], task_name: str) -> PlacePlan:
    """The PlacePlan of a BDDL goal with one ``in``/``on`` predicate; ValueError otherwise."""
    from envs.libero_env import goal_entities

    if len(goal_state) != 1 or goal_state[0][0].lower() not in PLACE_PREDICATES:
        raise ValueError(f"no scripted LIBERO expert for {task_name}: goal {goal_state}; the experts solve one "
                         f"{' / '.join(PLACE_PREDICATES)} predicate (pick and place); it will hold still")
    entities = goal_entities(goal_state)
    _, target, destination = goal_state[0]
    return PlacePlan(entities.index(target), entities.index(destination),
                     GRASP_SPECS.get(object_kind(target), DEFAULT_GRASP))


class LiberoExpertPolicy:
    """Scripted pick-and-place for LIBERO tasks, batched over a mixed-task batch; see the module docstring.

    n_obs_steps = 2 (the finger gap's change tells whether the gripper is still closing);
    returns chunks of one action.
    """

    n_obs_steps = 2
    n_action_steps = 1

    def __init__(self, tasks: list[Task]):
        from envs.libero_suites import goal_state

        self.tasks = tasks
        self.plans: dict[int, PlacePlan | None] = {}
        for task in tasks:
            try:
                self.plans[task.index] = plan_for(goal_state(task.suite, task.index), task.name)
            except ValueError as error:
                self.plans[task.index] = None
                log.warning("%s", error)

    def predict_action_chunk(self, batch: dict[str, Any]) -> np.ndarray:
        """obs.state (B, To, 8), obs.privileged (B, To, 28), task.index (B,) -> actions (B, 1, 7)."""
        if OBS_PRIVILEGED not in batch:
            raise KeyError(f"the LIBERO expert needs {OBS_PRIVILEGED!r} (LiberoTaskEnv provides it)")
        states, privileged = np.asarray(batch[OBS_STATE]), np.asarray(batch[OBS_PRIVILEGED])
        actions = [HOLD_ACTION if self.plans[int(i)] is None else act(self.plans[int(i)], s, p)
                   for i, s, p in zip(batch[TASK_INDEX], states, privileged)]
        return np.stack(actions).astype(np.float32)[:, None, :]


def grasp_point(plan: PlacePlan, entities: np.ndarray) -> np.ndarray:
    """(3,) world position the grip site goes to, from the object's position."""
    position = entities[plan.object_row, :3].astype(np.float64)
    point = position + np.asarray(plan.grasp.offset)
    if plan.grasp.rim_radius > 0:  # the rim wall must sit between the fingers, which close along y
        point[1] -= (1.0 if position[1] >= 0 else -1.0) * plan.grasp.rim_radius  # the side nearer y = 0
    return point


def act(plan: PlacePlan, state: np.ndarray, privileged: np.ndarray) -> np.ndarray:
    """One action (7,) from the observation window: state (To, 8), privileged (To, 28)."""
    eef, gaps = state[-1, :3].astype(np.float64), state[:, 6] - state[:, 7]
    entities = privileged[-1].reshape(-1, 7).astype(np.float64)
    center, destination = entities[plan.object_row, :3], entities[plan.destination_row, :3]
    grasp = grasp_point(plan, entities)
    gap, closing = gaps[-1], len(gaps) > 1 and gaps[-1] < gaps[-2] - 2e-4
    to_grasp = grasp - eef
    if EMPTY_GAP < gap < OPEN_GAP and not closing and np.linalg.norm(to_grasp) < HOLD_RADIUS:
        return _carry(plan, eef, grasp, center, destination)
    if closing:
        return _action(np.zeros(3), close=True)
    if np.linalg.norm(to_grasp) < AT_GRASP:
        if gap <= EMPTY_GAP:  # closed on nothing: open and try again from above
            return _action(np.array([0.0, 0.0, 0.5]), close=False)
        return _action(np.zeros(3), close=True)
    if np.linalg.norm((center - destination)[:2]) < 0.03 and center[2] < destination[2] + 0.1:
        above = np.r_[eef[:2], destination[2] + CARRY_CLEARANCE]  # placed: open, rise and wait
        return _action(GAIN * (above - eef), close=False)
    return _approach(eef, grasp, gap)


def _approach(eef: np.ndarray, grasp: np.ndarray, gap: float) -> np.ndarray:
    above = grasp + np.array([0.0, 0.0, 0.10])
    xy_error = np.linalg.norm((grasp - eef)[:2])
    if gap < OPEN_GAP:  # open before anything else (the fingers may still hold or touch something)
        return _action(np.array([0.0, 0.0, 0.3]) if xy_error > 0.02 else np.zeros(3), close=False)
    if xy_error > 0.015:
        target = above if eef[2] > grasp[2] + 0.06 else np.r_[eef[:2], above[2]]
        return _action(GAIN * (target - eef), close=False)
    return _action(GAIN * (grasp - eef), close=False)


def _carry(plan: PlacePlan, eef: np.ndarray, grasp: np.ndarray, center: np.ndarray,
           destination: np.ndarray) -> np.ndarray:
    """Holding: rise, move the object's centre above the destination, lower it, open. The object
    hangs where it was grasped, so the fingers move by the object's errors."""
    xy_error = (destination - center)[:2]
    carry_z = destination[2] + plan.grasp.carry_height  # high enough that the object clears the basket
    if np.linalg.norm(xy_error) > 0.012:
        if grasp[2] < carry_z - 0.03:
            return _action(GAIN * np.r_[0.2 * xy_error, carry_z - grasp[2]], close=True)
        return _action(GAIN * np.r_[xy_error, carry_z - grasp[2]], close=True)
    release_z = destination[2] + plan.grasp.release_height
    if grasp[2] > release_z + 0.01:
        return _action(GAIN * np.r_[xy_error, release_z - grasp[2]], close=True)
    return _action(np.zeros(3), close=False)


def _action(move: np.ndarray, close: bool) -> np.ndarray:
    return np.r_[np.clip(move, -1.0, 1.0), 0.0, 0.0, 0.0, 1.0 if close else -1.0]
