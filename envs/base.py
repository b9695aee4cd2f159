"""What every task env shares, whatever the simulator family: stepping, sticky success, MuJoCo's
instability counters, truncation, observation assembly, cameras and video frames.

A family's env subclasses `TaskEnv` and implements the simulator calls:

    class MyTaskEnv(TaskEnv):
        def _reset_sim(self, episode): ...          # -> raw observation; episode selects a goal or init state
        def _step_sim(self, action): ...            # -> (raw observation, reward, success at this step)
        def _state(self, raw): ...                  # -> obs.state (Ds,)
        model, data                                 # properties: the MuJoCo model and data
        def _close_sim(self): ...

Observations (a dict):
    ``obs.state``        (Ds,) float32
    ``obs.rgb.<camera>`` (3, H, W) uint8, upright, one per configured camera
    ``task.index``       int, the task's index within its suite
    and whatever `_extra_obs` adds (LIBERO's ``obs.privileged`` for its scripted experts).
``info["success"]`` says whether the task was solved at ANY step of the episode so far;
``info["unstable"]`` whether MuJoCo reported a numerical instability (the episode then ends, truncated:
MuJoCo does not raise on divergence, it counts warnings and resets the state silently).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from common.schema import OBS_STATE, TASK_INDEX, Task, rgb_key
from envs.rendering import CameraRenderer

INSTABILITY_WARNINGS = (mujoco.mjtWarning.mjWARN_BADQACC, mujoco.mjtWarning.mjWARN_BADQPOS,
                        mujoco.mjtWarning.mjWARN_BADQVEL)


@dataclass(frozen=True)
class EnvOptions:
    """How a task env is observed and run; `Suite.make_env` builds it from the EnvConfig and the engine."""

    cameras: tuple[str, ...] = ()  # cameras the policy sees (the family's names)
    image_size: int = 128  # square images, pixels per side
    fast_render: bool = True  # shadows, reflections and anti-aliasing off
    max_episode_steps: int = 500
    terminate_on_success: bool = True  # end the episode at its first success
    num_tasks: int = 1  # tasks of the suite: the range of task.index
    render_mode: str | None = None  # "rgb_array": render() gives video frames
    video_camera: str = ""  # camera of video frames
    video_size: int = 256  # video frames are square, pixels per side


def variation_index(task: Task, episode: int | None, count: int, rng: np.random.Generator, what: str) -> int:
    """Episode `episode`'s goal variation or init state (or one drawn from `rng` without an episode)."""
    if episode is None:
        return int(rng.integers(count))
    if not 0 <= episode < count:
        raise ValueError(f"{task.name}: episode {episode} has no {what} (there are {count})")
    return int(episode)


class TaskEnv(gym.Env):
    """One task of a suite as a gymnasium env with dict observations; see the module docstring."""

    metadata = {"render_modes": ["rgb_array"]}
    camera_map: dict[str, str] = {}  # our camera name -> the MuJoCo camera's name, where they differ
    hidden_geom_groups: tuple[int, ...] = ()  # geom groups never shown in images (e.g. collision meshes)

    def __init__(self, task: Task, options: EnvOptions, state_dim: int, action_dim: int,
                 extra_spaces: dict[str, gym.Space] | None = None):
        if options.max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1, got {options.max_episode_steps}")
        self.task, self.options = task, options
        self.render_mode = options.render_mode
        self.action_dim = action_dim
        spaces = {OBS_STATE: gym.spaces.Box(-np.inf, np.inf, (state_dim,), np.float32),
                  TASK_INDEX: gym.spaces.Discrete(options.num_tasks), **(extra_spaces or {})}
        for camera in options.cameras:
            spaces[rgb_key(camera)] = gym.spaces.Box(0, 255, (3, options.image_size, options.image_size), np.uint8)
        self.observation_space = gym.spaces.Dict(spaces)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (action_dim,), np.float32)
        self._renderers: dict[str, CameraRenderer] = {}  # "policy" / "video"; built lazily, in the worker
        self._steps, self._succeeded = 0, False
        self._warnings_at_reset = np.zeros(len(INSTABILITY_WARNINGS), dtype=np.int64)

    # ---- the simulator, per family ------------------------------------------------------------------

    @property
    def model(self) -> mujoco.MjModel:
        raise NotImplementedError

    @property
    def data(self) -> mujoco.MjData:
        raise NotImplementedError

    def _reset_sim(self, episode: int | None) -> Any:
        """Reset the simulator for episode `episode` (None: a variation drawn from self.np_random)."""
        raise NotImplementedError

    def _step_sim(self, action: np.ndarray) -> tuple[Any, float, bool]:
        """One simulator step with a (Da,) action in [-1, 1] -> (raw observation, reward, success now)."""
        raise NotImplementedError

    def _state(self, raw: Any) -> np.ndarray:
        raise NotImplementedError

    def _extra_obs(self, raw: Any) -> dict[str, Any]:
        return {}

    def _close_sim(self) -> None:
        pass

    # ---- gymnasium ------------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        raw = self._reset_sim((options or {}).get("episode"))
        self._steps, self._succeeded = 0, False
        self._warnings_at_reset = self._warning_counts()
        self._verify_renderers()
        return self._observe(raw), self._info(unstable=False)

    def step(self, action: np.ndarray):
        action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        if action.shape != (self.action_dim,):
            raise ValueError(f"{type(self).__name__} actions have shape ({self.action_dim},), got {action.shape}")
        raw, reward, success = self._step_sim(action)
        self._steps += 1
        self._succeeded |= bool(success)
        unstable = bool(np.any(self._warning_counts() > self._warnings_at_reset))
        terminated = self._succeeded and self.options.terminate_on_success
        truncated = unstable or self._steps >= self.options.max_episode_steps
        if terminated or truncated:
            self._verify_renderers()  # the episode's frames count only if the renderers are still sound
        return self._observe(raw), float(reward), terminated, truncated, self._info(unstable)

    def render(self) -> np.ndarray | None:
        """A (H, W, 3) uint8 frame of the video camera; None unless render_mode is rgb_array."""
        if self.render_mode != "rgb_array":
            return None
        camera = self.options.video_camera
        return self._render("video", (camera,), self.options.video_size)[camera]

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers = {}
        self._close_sim()

    # ---- shared mechanics -----------------------------------------------------------------------------

    def _warning_counts(self) -> np.ndarray:
        return np.array([self.data.warning[int(w)].number for w in INSTABILITY_WARNINGS])

    def _info(self, unstable: bool) -> dict[str, Any]:
        return {"success": self._succeeded, "unstable": unstable, "steps": self._steps,
                "task": self.task.name, "instruction": self.task.instruction}

    def _observe(self, raw: Any) -> dict[str, Any]:
        obs: dict[str, Any] = {OBS_STATE: np.asarray(self._state(raw), dtype=np.float32),
                               TASK_INDEX: self.task.index, **self._extra_obs(raw)}
        if self.options.cameras:
            images = self._render("policy", self.options.cameras, self.options.image_size)
            for camera, image in images.items():
                obs[rgb_key(camera)] = np.ascontiguousarray(image.transpose(2, 0, 1))
        return obs

    def _render(self, role: str, cameras: tuple[str, ...], size: int) -> dict[str, np.ndarray]:
        """{camera: (size, size, 3) uint8 upright image}, keyed by our camera names."""
        if role not in self._renderers:
            self._renderers[role] = CameraRenderer(self.model, [self.camera_map.get(c, c) for c in cameras], size,
                                                   size, fast=self.options.fast_render,
                                                   hidden_geom_groups=self.hidden_geom_groups)
        images = self._renderers[role].render(self.data)
        return {camera: images[self.camera_map.get(camera, camera)] for camera in cameras}

    def _verify_renderers(self) -> None:
        for renderer in self._renderers.values():
            renderer.verify()
