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
the goal predicate ``in``/``on`` (object, destination) and, per object kind, where to grasp
(`GraspSpec`). Bowls are taken by the rim on the robot's side with the hand turned a quarter
turn (fingers closing along x), which keeps the 20-cm-wide hand clear of neighbours, drawer walls
and the cabinet top; the orientation is then servoed from ``obs.state``'s axis-angle.

Scripted: goals of one ``in``/``on`` predicate (libero_object's basket, libero_spatial's plate,
libero_goal's pick-and-place tasks). Tasks with other goals (open, turnon, two predicates) have no
script: the constructor logs them and the expert holds still there (the episodes fail, visibly).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from common.schema import OBS_STATE, TASK_INDEX, Task
from envs.libero.env import OBS_PRIVILEGED

log = logging.getLogger(__name__)

GAIN = 10.0  # action units per metre of position error (1 unit ~ 0.0125 m per step)
OPEN_GAP = 0.072  # finger gap (m) above which the gripper counts as open (fully open ~0.078)
EMPTY_GAP = 0.006  # finger gap below which the gripper closed on nothing (~0.002); see GraspSpec.empty_gap
AT_GRASP = 0.012  # distance (m) from the grasp point at which the fingers close
HOLD_RADIUS = 0.035  # distance (m) grasp point - fingers while the object is held
CARRY_CLEARANCE = 0.12  # height above the destination the fingers wait at once the object is placed (m)
XY_TOLERANCE = 0.015  # horizontal distance (m) to the grasp point below which the fingers descend
MIN_XY_ACTION = 0.25  # smallest horizontal action (units) while aligning: below it the OSC stalls short of the target
CARRY_CEILING = 0.35  # highest the grasp point rises above the destination while carrying (m)
ROTATION_GAIN = 1.5  # rotation action units per radian of orientation error (1 unit = 0.5 rad per step)
RESTING_BAND = 0.04  # below this height (m) above the release height, an object that stopped sinking is let go
RESTING_SPEED = 5e-4  # sinking (m per step) below which a lowered object counts as resting on something
YAW_TOLERANCE = 0.15  # yaw error (rad) below which the fingers descend to a rim
# Gripper pointing down, fingers closing along world y: the Panda's pose at reset (yaw 0).
DOWN = Rotation.from_matrix(np.diag([1.0, -1.0, -1.0]))


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
    from envs.libero.env import goal_entities

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
    runs_in_worker = True  # cheap per-sample Python from privileged state: it runs beside its env

    def __init__(self, tasks: list[Task]):
        from envs.libero.benchmark import goal_state

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
    point = entities[plan.object_row, :3].astype(np.float64) + np.asarray(plan.grasp.offset)
    point[0] -= plan.grasp.rim_radius  # the rim wall on the robot's side sits between the fingers
    return point


def act(plan: PlacePlan, state: np.ndarray, privileged: np.ndarray) -> np.ndarray:
    """One action (7,) from the observation window: state (To, 8), privileged (To, 28)."""
    eef, gaps = state[-1, :3].astype(np.float64), state[:, 6] - state[:, 7]
    entities = privileged[-1].reshape(-1, 7).astype(np.float64)
    center, destination = entities[plan.object_row, :3], entities[plan.destination_row, :3]
    grasp = grasp_point(plan, entities)
    rotate = rotation_action(state[-1, 3:6], plan.grasp.yaw)
    gap, closing = gaps[-1], len(gaps) > 1 and gaps[-1] < gaps[-2] - 2e-4
    to_grasp = grasp - eef
    if plan.grasp.empty_gap < gap < OPEN_GAP and not closing and np.linalg.norm(to_grasp) < hold_radius(plan.grasp):
        sinking = float(privileged[0, 7 * plan.object_row + 2] - center[2])  # object's drop over the window (m)
        return _carry(plan, CarryState(grasp, center, destination, sinking), rotate)
    if closing:
        return _action(np.zeros(3), rotate, close=True)
    if np.linalg.norm(to_grasp) < AT_GRASP:
        if gap <= plan.grasp.empty_gap:  # closed on nothing: open and try again from above
            return _action(np.array([0.0, 0.0, 0.5]), rotate, close=False)
        return _action(np.zeros(3), rotate, close=True)
    if np.linalg.norm((center - destination)[:2]) < 0.03 and center[2] < destination[2] + 0.1:
        above = np.r_[eef[:2], destination[2] + CARRY_CLEARANCE]  # placed: open, rise and wait
        return _action(GAIN * (above - eef), rotate, close=False)
    return _approach(eef, grasp, gap, rotate)


def hold_radius(grasp: GraspSpec) -> float:
    """Largest fingers - grasp point distance (m) at which the object counts as held: a bowl held
    by its rim tilts, which moves the rim point computed from its upright pose."""
    return HOLD_RADIUS + grasp.rim_radius


def _approach(eef: np.ndarray, grasp: np.ndarray, gap: float, rotate: np.ndarray) -> np.ndarray:
    """Open, rise, move above the grasp point while turning the hand, then descend onto it."""
    above = grasp + np.array([0.0, 0.0, 0.10])
    xy_error = np.linalg.norm((grasp - eef)[:2])
    if gap < OPEN_GAP:  # open before anything else (the fingers may still hold or touch something)
        return _action(np.array([0.0, 0.0, 0.3]) if xy_error > 0.02 else np.zeros(3), rotate, close=False)
    if xy_error > XY_TOLERANCE:
        target = above if eef[2] > grasp[2] + 0.06 else np.r_[eef[:2], above[2]]
        return _action(_at_least(GAIN * (target - eef), MIN_XY_ACTION), rotate, close=False)
    if np.abs(rotate).max() > ROTATION_GAIN * YAW_TOLERANCE:  # still turning: wait above the grasp point
        return _action(GAIN * (np.r_[grasp[:2], max(eef[2], grasp[2] + 0.06)] - eef), rotate, close=False)
    return _action(GAIN * (grasp - eef), rotate, close=False)


@dataclass(frozen=True)
class CarryState:
    """What carrying needs: grasp point, object centre, destination (3,) each, world frame (m),
    and how far the object sank over the observation window (m)."""

    grasp: np.ndarray
    center: np.ndarray
    destination: np.ndarray
    sinking: float


def _carry(plan: PlacePlan, carried: CarryState, rotate: np.ndarray) -> np.ndarray:
    """Holding: rise, move the object's centre above the destination, lower it, open. The object
    hangs where it was grasped, so the fingers move by the object's errors. An object picked up
    above the carry height (e.g. from a cabinet top) keeps rising while it travels, never sinking
    into what it stood on. It is released at the release height, or lower down once it stops
    sinking (a tilted bowl rests on the plate's rim before the fingers get there)."""
    grasp, center, destination = carried.grasp, carried.center, carried.destination
    xy_error = (destination - center)[:2]
    carry_z = destination[2] + plan.grasp.carry_height  # high enough that the object clears the basket
    if np.linalg.norm(xy_error) > 0.012:
        if grasp[2] < carry_z - 0.03:
            return _action(GAIN * np.r_[0.2 * xy_error, carry_z - grasp[2]], rotate, close=True)
        if grasp[2] <= carry_z + 0.03:
            return _action(GAIN * np.r_[xy_error, carry_z - grasp[2]], rotate, close=True)
        ceiling = destination[2] + CARRY_CEILING  # picked up from above the carry height: rise on
        xy_scale = 0.2 if grasp[2] < ceiling - 0.05 else 1.0  # mostly up, out of a drawer or off a shelf
        return _action(GAIN * np.r_[xy_scale * xy_error, min(grasp[2] + 0.03, ceiling) - grasp[2]], rotate,
                       close=True)
    release_z = destination[2] + plan.grasp.release_height
    resting = grasp[2] < release_z + RESTING_BAND and carried.sinking < RESTING_SPEED
    if grasp[2] > release_z + 0.01 and not resting:
        return _action(GAIN * np.r_[xy_error, release_z - grasp[2]], rotate, close=True)
    return _action(np.array([0.0, 0.0, plan.grasp.release_lift]), rotate, close=False)


def rotation_action(ori: np.ndarray, yaw: float | None) -> np.ndarray:
    """(3,) rotation action turning the hand from axis-angle `ori` to pointing down at `yaw`
    (world-frame axis-angle error, as OSC_POSE expects); zeros when yaw is None."""
    if yaw is None:
        return np.zeros(3)
    # Always the same turn (not the nearer of yaw and yaw - pi, which the symmetric fingers would
    # allow): the other way round, the wrist reaches its joint limit at the far left of the table.
    current = Rotation.from_rotvec(ori.astype(np.float64))
    target = Rotation.from_euler("z", yaw) * DOWN
    return ROTATION_GAIN * (target * current.inv()).as_rotvec()


def _at_least(move: np.ndarray, norm: float) -> np.ndarray:
    """`move` scaled up to `norm` if shorter (a direction is kept, a zero move stays zero)."""
    length = np.linalg.norm(move)
    return move * (norm / length) if 0 < length < norm else move


def _action(move: np.ndarray, rotate: np.ndarray, close: bool) -> np.ndarray:
    return np.r_[np.clip(move, -1.0, 1.0), np.clip(rotate, -1.0, 1.0), 1.0 if close else -1.0]
