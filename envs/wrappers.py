"""Rollout logic as env wrappers: observation history, action-chunk execution, videos, faults.

The policy keeps no rollout state; a worker stacks these around a task env:
    ActionChunkWrapper(ObsHistoryWrapper(VideoRecorderWrapper(env), n_obs_steps), n_action_steps)
"""

from __future__ import annotations

import signal
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from envs.config import FaultConfig
from envs.video import write_mp4


class ObsHistoryWrapper(gym.Wrapper):
    """Returns the last `n_obs_steps` observations, each key stacked to (To, ...).

    At the start of an episode the window is padded by repeating the first observation,
    as in training windows at episode edges.
    """

    def __init__(self, env: gym.Env, n_obs_steps: int):
        super().__init__(env)
        if n_obs_steps < 1:
            raise ValueError(f"n_obs_steps must be >= 1, got {n_obs_steps}")
        self.n_obs_steps = n_obs_steps
        self._history: deque[dict[str, Any]] = deque(maxlen=n_obs_steps)
        self.observation_space = gym.spaces.Dict({
            key: _stack_space(space, n_obs_steps) for key, space in env.observation_space.spaces.items()})

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self._history.clear()
        self._history.extend([obs] * self.n_obs_steps)
        return self._window(), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._history.append(obs)
        return self._window(), reward, terminated, truncated, info

    def _window(self) -> dict[str, np.ndarray]:
        return {key: np.stack([np.asarray(o[key]) for o in self._history]) for key in self._history[0]}


def _stack_space(space: gym.Space, n: int) -> gym.Space:
    if isinstance(space, gym.spaces.Box):
        return gym.spaces.Box(np.stack([space.low] * n), np.stack([space.high] * n), dtype=space.dtype)
    if isinstance(space, gym.spaces.Discrete):
        return gym.spaces.MultiDiscrete([space.n] * n)
    raise TypeError(f"cannot stack observation space {space}")


class ActionChunkWrapper(gym.Wrapper):
    """Executes the first `n_action_steps` actions of a chunk (T, Da), one env step each.

    Stops early when the episode ends. Returns the last observation, the summed reward,
    the final step's flags and info, with ``info["chunk_steps"]`` = steps executed.
    """

    def __init__(self, env: gym.Env, n_action_steps: int):
        super().__init__(env)
        if n_action_steps < 1:
            raise ValueError(f"n_action_steps must be >= 1, got {n_action_steps}")
        self.n_action_steps = n_action_steps
        single = env.action_space
        self.action_space = gym.spaces.Box(np.stack([single.low] * n_action_steps),
                                           np.stack([single.high] * n_action_steps), dtype=single.dtype)

    def step(self, chunk: np.ndarray):
        chunk = np.asarray(chunk)
        if chunk.ndim != 2 or len(chunk) < self.n_action_steps:
            raise ValueError(f"expected an action chunk (T>={self.n_action_steps}, Da), got shape {chunk.shape}")
        total_reward, steps = 0.0, 0
        for action in chunk[: self.n_action_steps]:
            obs, reward, terminated, truncated, info = self.env.step(action)
            total_reward += float(reward)
            steps += 1
            if terminated or truncated:
                break
        info = dict(info, chunk_steps=steps)
        return obs, total_reward, terminated, truncated, info


class VideoRecorderWrapper(gym.Wrapper):
    """Records the frames of episodes reset with ``options={"video_path": <path without suffix>}``.

    At the episode's end it writes ``<path>_success.mp4`` or ``<path>_failure.mp4`` and puts the
    path into ``info["video"]``. The env must have ``render_mode="rgb_array"``.
    """

    def __init__(self, env: gym.Env, fps: int = 30):
        super().__init__(env)
        self.fps = fps
        self._frames: list[np.ndarray] = []
        self._stem: Path | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        options = dict(options or {})
        stem = options.pop("video_path", None)
        obs, info = self.env.reset(seed=seed, options=options)
        self._stem = Path(stem) if stem else None
        self._frames = [self.env.render()] if self._stem else []
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self._stem is not None:
            self._frames.append(self.env.render())
            if terminated or truncated:
                outcome = "success" if info.get("success") else "failure"
                path = write_mp4(self._stem.with_name(f"{self._stem.name}_{outcome}.mp4"), self._frames, self.fps)
                info = dict(info, video=str(path))
                self._frames, self._stem = [], None
        return obs, reward, terminated, truncated, info


class TrajectoryRecorderWrapper(gym.Wrapper):
    """Records (observation, action, reward, done) of every step; the episode's arrays go into
    the final step's ``info["trajectory"]``.

    Place it above `ActionNoiseWrapper`: the recorded action is the one the policy chose
    (the clean label), whatever noise is added below. Arrays: each observation key (T, ...),
    ``actions`` (T, Da) float32, ``rewards`` (T,) float32, ``dones`` (T,) uint8 (1 on the last step).
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self._obs: dict[str, Any] | None = None
        self._steps: list[tuple[dict[str, Any], np.ndarray, float]] = []

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self._obs, self._steps = obs, []
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._steps.append((self._obs, np.asarray(action, dtype=np.float32), float(reward)))
        self._obs = obs
        if terminated or truncated:
            observations, actions, rewards = zip(*self._steps)
            trajectory = {key: np.stack([o[key] for o in observations]) for key in observations[0]}
            dones = np.zeros(len(actions), dtype=np.uint8)
            dones[-1] = 1
            trajectory.update(actions=np.stack(actions), rewards=np.array(rewards, np.float32), dones=dones)
            info = dict(info, trajectory=trajectory)
            self._steps = []
        return obs, reward, terminated, truncated, info


class ActionNoiseWrapper(gym.Wrapper):
    """Adds Gaussian noise (std `sigma`) to every executed action, clipped to the action bounds.

    The noise generator is reseeded at each reset from the reset seed, so an episode is
    reproducible from its seed.
    """

    def __init__(self, env: gym.Env, sigma: float):
        super().__init__(env)
        if sigma < 0:
            raise ValueError(f"action noise must be >= 0, got {sigma}")
        self.sigma = sigma
        self._rng = np.random.default_rng()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._rng = np.random.default_rng(seed)
        return self.env.reset(seed=seed, options=options)

    def step(self, action):
        space = self.env.action_space
        noisy = np.asarray(action) + self._rng.normal(0.0, self.sigma, size=np.shape(action))
        return self.env.step(np.clip(noisy, space.low, space.high).astype(space.dtype))


class FaultInjectionWrapper(gym.Wrapper):
    """Fails on purpose at a configured (task, episode, step), to test the evaluation engine.

    ``kind="exception"`` raises RuntimeError; ``kind="segfault"`` kills its own process with SIGSEGV,
    as a MuJoCo crash would; ``kind="hang"`` never returns, as a stuck simulator or GL call.
    With ``only_once`` a marker file under `marker_dir` records that
    the fault fired, so a re-run (resume) completes.
    """

    def __init__(self, env: gym.Env, fault: FaultConfig, task_name: str, marker_dir: Path):
        super().__init__(env)
        self.fault, self.task_name, self.marker_dir = fault, task_name, Path(marker_dir)
        self._armed = False
        self._steps = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        episode = (options or {}).get("episode")
        self._steps = 0
        self._armed = (self.fault.task in (None, self.task_name) and episode == self.fault.episode
                       and not (self.fault.only_once and self._marker().exists()))
        return self.env.reset(seed=seed, options=options)

    def step(self, action):
        self._steps += 1
        if self._armed and self._steps == self.fault.step:
            self._marker().parent.mkdir(parents=True, exist_ok=True)
            self._marker().touch()
            if self.fault.kind == "segfault":  # in this thread, as a crash in the step: a signal to the process
                signal.pthread_kill(threading.get_ident(), signal.SIGSEGV)  # may reach another thread too late
            while self.fault.kind == "hang":
                time.sleep(3600)
            raise RuntimeError(f"injected fault in {self.task_name} episode {self.fault.episode} "
                               f"step {self.fault.step}")
        return self.env.step(action)

    def _marker(self) -> Path:
        return self.marker_dir / f"fault_{self.task_name}_ep{self.fault.episode}.fired"
