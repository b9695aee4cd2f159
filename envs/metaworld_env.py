"""One Meta-World v3 task as a gymnasium env with dict observations and fixed goal variations."""

from __future__ import annotations

import pickle
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from metaworld.env_dict import ALL_V3_ENVIRONMENTS
from metaworld.types import Task as MetaWorldTask

from envs.rendering import CameraRenderer
from schema import OBS_STATE, TASK_INDEX, Task, rgb_key

METAWORLD_HORIZON = 500  # metaworld refuses to step past max_path_length = 500
STATE_DIM = 39
ACTION_DIM = 4
# MuJoCo does not raise on divergence: it counts warnings and resets the state silently.
INSTABILITY_WARNINGS = (mujoco.mjtWarning.mjWARN_BADQACC, mujoco.mjtWarning.mjWARN_BADQPOS,
                        mujoco.mjtWarning.mjWARN_BADQVEL)


class MetaWorldTaskEnv(gym.Env):
    """A Meta-World task whose goal variation is chosen per episode.

    Observations (a dict):
        ``obs.state``        (39,) float32: hand, gripper, objects, previous frame, goal
        ``obs.rgb.<camera>`` (3, H, W) uint8, upright, one per configured camera
        ``task.index``       int, the task's index within its suite
    Actions: (4,) float32 in [-1, 1]: end-effector xyz delta and gripper.
    ``sim`` is the underlying metaworld env (MuJoCo ``sim.model`` / ``sim.data``).

    ``reset(options={"episode": i})`` selects goal variation ``i`` of ``goals``; without it the
    variation is drawn from the seeded RNG. With ``goals=None`` metaworld draws a fresh goal at
    every reset (redrawing those its task rejects) from a generator seeded by the reset's seed. ``info["success"]`` says whether the
    task was solved at ANY step of the episode so far; ``info["unstable"]`` whether MuJoCo
    reported a numerical instability (the episode then ends, truncated).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 80}

    def __init__(self, task: Task, goals: np.ndarray | None, *, cameras: tuple[str, ...] = (),
                 image_size: int = 128, fast_render: bool = True, max_episode_steps: int = METAWORLD_HORIZON,
                 terminate_on_success: bool = True, num_tasks: int = 50, render_mode: str | None = None,
                 video_camera: str = "corner", video_size: int = 256):
        if task.name not in ALL_V3_ENVIRONMENTS:
            raise ValueError(f"unknown Meta-World task {task.name!r}; known: {sorted(ALL_V3_ENVIRONMENTS)}")
        if not 0 < max_episode_steps <= METAWORLD_HORIZON:
            raise ValueError(f"max_episode_steps must be in 1..{METAWORLD_HORIZON}, got {max_episode_steps}")
        self.task = task
        self.goals = goals
        self.cameras = tuple(cameras)
        self.image_size = image_size
        self.fast_render = fast_render
        self.max_episode_steps = max_episode_steps
        self.terminate_on_success = terminate_on_success
        self.render_mode = render_mode
        self.video_camera, self.video_size = video_camera, video_size
        self._env_cls = ALL_V3_ENVIRONMENTS[task.name]
        self.sim = self._env_cls()
        self._camera_renderer: CameraRenderer | None = None  # built lazily: GL contexts live in workers
        self._video_renderer: CameraRenderer | None = None
        spaces = {OBS_STATE: gym.spaces.Box(-np.inf, np.inf, (STATE_DIM,), np.float32),
                  TASK_INDEX: gym.spaces.Discrete(num_tasks)}
        for camera in self.cameras:
            spaces[rgb_key(camera)] = gym.spaces.Box(0, 255, (3, image_size, image_size), np.uint8)
        self.observation_space = gym.spaces.Dict(spaces)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)
        self._steps = 0
        self._succeeded = False
        self._warnings_at_reset = np.zeros(len(INSTABILITY_WARNINGS), dtype=np.int64)
        self.goal: np.ndarray | None = None

    def _official_goal(self, episode: int | None) -> np.ndarray:
        if episode is None:
            episode = int(self.np_random.integers(len(self.goals)))
        if not 0 <= episode < len(self.goals):
            raise ValueError(f"{self.task.name}: episode {episode} has no goal variation (there are {len(self.goals)})")
        return np.asarray(self.goals[episode])

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        goal = self._official_goal((options or {}).get("episode")) if self.goals is not None else None
        # set_task needs some goal vector; for fresh goals it is replaced just below.
        data = dict(rand_vec=goal if goal is not None else np.zeros(1), env_cls=self._env_cls,
                    partially_observable=False)
        self.sim.set_task(MetaWorldTask(env_name=self.task.name, data=pickle.dumps(data)))
        if goal is None:
            # Fresh goals are drawn by metaworld itself from its seeded RNG: several tasks reject
            # and redraw goals that sit too close to the object, which only works unfrozen.
            self.sim._freeze_rand_vec, self.sim.seeded_rand_vec = False, True
            self.sim.seed(int(self.np_random.integers(2**31)))
        state, _ = self.sim.reset()
        self._verify_renderers()
        self.goal = np.asarray(self.sim._last_rand_vec).copy()
        self._steps, self._succeeded = 0, False
        self._warnings_at_reset = self._warning_counts()
        return self._observe(state), self._info(unstable=False)

    def step(self, action: np.ndarray):
        action = np.clip(np.asarray(action, dtype=np.float32), -1.0, 1.0)
        if action.shape != (ACTION_DIM,):
            raise ValueError(f"Meta-World actions have shape ({ACTION_DIM},), got {action.shape}")
        state, reward, _, _, sim_info = self.sim.step(action)
        self._steps += 1
        self._succeeded |= bool(sim_info["success"])
        unstable = bool(np.any(self._warning_counts() > self._warnings_at_reset))
        terminated = self._succeeded and self.terminate_on_success
        truncated = unstable or self._steps >= self.max_episode_steps
        if terminated or truncated:
            self._verify_renderers()  # the episode's frames count only if the renderers are still sound
        return self._observe(state), float(reward), terminated, truncated, self._info(unstable)

    def _verify_renderers(self) -> None:
        for renderer in (self._camera_renderer, self._video_renderer):
            if renderer is not None:
                renderer.verify()

    def _warning_counts(self) -> np.ndarray:
        return np.array([self.sim.data.warning[int(w)].number for w in INSTABILITY_WARNINGS])

    def _info(self, unstable: bool) -> dict[str, Any]:
        return {"success": self._succeeded, "unstable": unstable, "steps": self._steps,
                "task": self.task.name, "instruction": self.task.instruction}

    def _observe(self, state: np.ndarray) -> dict[str, Any]:
        obs: dict[str, Any] = {OBS_STATE: state.astype(np.float32), TASK_INDEX: self.task.index}
        if self.cameras:
            if self._camera_renderer is None:
                self._camera_renderer = CameraRenderer(self.sim.model, self.cameras, self.image_size,
                                                       self.image_size, fast=self.fast_render)
            for camera, image in self._camera_renderer.render(self.sim.data).items():
                obs[rgb_key(camera)] = np.ascontiguousarray(image.transpose(2, 0, 1))
        return obs

    def render(self) -> np.ndarray | None:
        """A (H, W, 3) uint8 frame of ``video_camera`` for videos; None unless render_mode is rgb_array."""
        if self.render_mode != "rgb_array":
            return None
        if self._video_renderer is None:
            self._video_renderer = CameraRenderer(self.sim.model, (self.video_camera,), self.video_size,
                                                  self.video_size, fast=self.fast_render)
        return self._video_renderer.render(self.sim.data)[self.video_camera]

    def close(self) -> None:
        for renderer in (self._camera_renderer, self._video_renderer):
            if renderer is not None:
                renderer.close()
        self._camera_renderer = self._video_renderer = None
        self.sim.close()
