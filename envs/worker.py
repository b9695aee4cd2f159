"""A rollout worker process: owns a few env slots and steps them on request.

Protocol: for each group of slots the engine sends a list of commands,
    ("reset", slot, task_name, episode, seed, video_stem | None)
    ("step", slot)                    the chunk (Ta, Da) is in the slot's shared memory
    ("step", slot, chunk)             the chunk inline (an in-process worker, as the tests drive it)
    ("run", slot, task_name, episode, seed, video_stem | None)
                                      the whole episode, with the policy the worker holds (`WorkerSpec.policy`:
                                      scripted experts run next to their env, with no round trip per step)
and the worker answers, in order, with one `SlotUpdate` per command. ``None`` asks it to exit.
In a worker process, observations travel through shared memory (`envs.transport`): an update says that the
slot's window is ready (and, the first time, where it lies) instead of carrying it.
An exception in one slot ends that slot's episode as an "error" record and drops its env;
the other slots and the process carry on. GL contexts are created here, never in the parent.
"""

from __future__ import annotations

import logging
import os
import signal
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from common.schema import EPISODE_SEED, EPISODE_STEP, TASK_INDEX, TASK_INSTRUCTION, ChunkPolicy, Task
from envs.registry import Suite
from envs.transport import Layout, SlotBuffers
from envs.wrappers import (
    ActionChunkWrapper,
    ActionNoiseWrapper,
    FaultInjectionWrapper,
    ObsHistoryWrapper,
    TrajectoryRecorderWrapper,
    VideoRecorderWrapper,
)

log = logging.getLogger(__name__)


@dataclass
class WorkerSpec:
    """Everything a worker needs to build its envs (pickled into the process)."""

    suite: Suite
    n_obs_steps: int
    n_action_steps: int
    out_dir: Path  # fault markers go under out_dir/.faults
    record_videos: bool
    record_trajectories: bool = False  # send each finished episode's arrays back (for datasets)
    action_noise: float = 0.0  # std of Gaussian noise added to executed actions (labels stay clean)
    video_camera: str = "corner"  # the engine passes rollout.video_camera or the suite's camera
    video_size: int = 256
    video_fps: int = 30
    max_idle_envs: int = 8  # finished envs kept for reuse (building a scene can take seconds); the
    # engine gives the slot count: fewer and slots that finish together would close envs they reuse
    # next, more and a LIBERO worker holds large scenes (docs/libero.md) of tasks it has left behind
    policy: ChunkPolicy | None = None  # a policy that runs in the worker ("run" commands), e.g. scripted experts


def policy_batch(windows: list[dict[str, np.ndarray]], tasks: list[Task], seeds: list[int],
                 steps: list[int]) -> dict[str, Any]:
    """The batch a ChunkPolicy gets for B episodes: each obs key stacked to (B, To, ...), task.index (B,),
    task.instruction (B strings), episode.seed and episode.step (B,). The engine and workers build it alike."""
    batch: dict[str, Any] = {key: np.stack([w[key] for w in windows]) for key in windows[0] if key != TASK_INDEX}
    batch[TASK_INDEX] = np.array([t.index for t in tasks], dtype=np.int64)
    batch[TASK_INSTRUCTION] = [t.instruction for t in tasks]
    batch[EPISODE_SEED] = np.asarray(seeds, dtype=np.int64)
    batch[EPISODE_STEP] = np.asarray(steps, dtype=np.int64)
    return batch


@dataclass
class SlotUpdate:
    """A slot's state after a command: the observation window, or the finished episode's record."""

    slot: int
    obs: dict[str, Any] | None  # (To, ...) arrays per key, when they travel inline
    record: dict[str, Any] | None = None  # EpisodeRecord fields when the episode ended
    trajectory: dict[str, Any] | None = None  # the episode's arrays, when recording trajectories
    steps: int = 0  # env steps executed by this command
    ready: bool = False  # the slot's observation window is in its shared memory
    layout: Layout | None = None  # where that memory is, sent when it is (re)made

    @property
    def has_obs(self) -> bool:
        return self.ready or self.obs is not None


@dataclass
class _Episode:
    task: Task
    episode: int
    env: gym.Env
    seed: int = 0
    reward: float = 0.0  # summed over the episode's steps


class RolloutWorker:
    """The in-process part of a worker: slots, an env pool, and command handling. With `shared_memory`
    (worker processes) observations are published in per-slot shared memory instead of in the updates."""

    def __init__(self, spec: WorkerSpec, shared_memory: bool = False):
        self.spec = spec
        self.shared_memory = shared_memory
        self.episodes: dict[int, _Episode] = {}
        self.idle_envs: list[tuple[str, gym.Env]] = []  # (task name, env), least recently released first
        self.buffers: dict[int, SlotBuffers] = {}

    def handle(self, command: tuple) -> SlotUpdate:
        kind, slot = command[0], command[1]
        try:
            if kind == "reset":
                return self._publish(slot, self._reset(slot, *command[2:]))
            if kind == "step":
                chunk = command[2] if len(command) > 2 else self.buffers[slot].action()
                return self._publish(slot, *self._step(slot, chunk))
            if kind == "run":
                return self._run(slot, *command[2:])
            raise ValueError(f"unknown worker command {kind!r}")
        except Exception as error:  # noqa: BLE001  the episode is reported as an error, not hidden
            log.error("slot %d failed:\n%s", slot, traceback.format_exc())
            return self._fail(slot, error)

    def _publish(self, slot: int, obs: dict[str, Any] | None, steps: int = 0, record: dict[str, Any] | None = None,
                 trajectory: dict[str, Any] | None = None) -> SlotUpdate:
        """The update for a slot: its observation inline, or written to its shared memory."""
        if obs is None or not self.shared_memory:
            return SlotUpdate(slot, obs, record, trajectory, steps)
        layout = None
        buffers = self.buffers.get(slot)
        if buffers is None or not buffers.layout.matches(obs):
            if buffers is not None:
                buffers.close()
            space = self.episodes[slot].env.action_space  # (Ta, Da) after ActionChunkWrapper
            buffers = self.buffers[slot] = SlotBuffers(obs, space.shape, space.dtype)
            layout = buffers.layout
        buffers.write_obs(obs)
        return SlotUpdate(slot, None, record, trajectory, steps, ready=True, layout=layout)

    def _run(self, slot: int, task_name: str, episode: int, seed: int, video_stem: str | None) -> SlotUpdate:
        """A whole episode with the worker's own policy; returns the final update (its record)."""
        if self.spec.policy is None:
            raise RuntimeError("a run command, but this worker holds no policy")
        obs, steps, task = self._reset(slot, task_name, episode, seed, video_stem), 0, self.spec.suite.task(task_name)
        while True:
            batch = policy_batch([obs], [task], [seed], [steps])
            chunk = np.asarray(self.spec.policy.predict_action_chunk(batch))[0, :self.spec.n_action_steps]
            obs, done, record, trajectory = self._step(slot, chunk)
            steps += done
            if record is not None:
                return SlotUpdate(slot, None, record, trajectory, steps)

    def _build_env(self, task: Task) -> gym.Env:
        spec = self.spec
        render_mode = "rgb_array" if spec.record_videos else None
        env = spec.suite.make_env(task, render_mode=render_mode, video_camera=spec.video_camera,
                                  video_size=spec.video_size)
        fault = spec.suite.config.fault
        if fault.kind is not None:
            env = FaultInjectionWrapper(env, fault, task.name, spec.out_dir / ".faults")
        if spec.record_videos:
            env = VideoRecorderWrapper(env, fps=spec.video_fps)
        if spec.action_noise > 0:
            env = ActionNoiseWrapper(env, spec.action_noise)
        if spec.record_trajectories:
            env = TrajectoryRecorderWrapper(env)
        env = ObsHistoryWrapper(env, spec.n_obs_steps)
        return ActionChunkWrapper(env, spec.n_action_steps)

    def _reset(self, slot: int, task_name: str, episode: int, seed: int, video_stem: str | None) -> dict[str, Any]:
        """Start an episode in `slot` (an idle env of the task if there is one); returns its first window."""
        self._release(slot)
        task = self.spec.suite.task(task_name)
        env = self._take_idle(task_name)
        if env is None:
            env = self._build_env(task)
        self.episodes[slot] = _Episode(task, episode, env, seed)
        options: dict[str, Any] = {"episode": episode}
        if video_stem:
            options["video_path"] = video_stem
        obs, _ = env.reset(seed=seed, options=options)
        return obs

    def _step(self, slot: int, chunk: np.ndarray) -> tuple[dict[str, Any] | None, int, dict[str, Any] | None,
                                                          dict[str, Any] | None]:
        """Execute a chunk -> (next window or None at the end, env steps done, record at the end, trajectory)."""
        current = self.episodes[slot]
        obs, reward, terminated, truncated, info = current.env.step(chunk)
        current.reward += reward
        if not (terminated or truncated):
            return obs, info["chunk_steps"], None, None
        record = {"task": current.task.name, "task_index": current.task.index, "episode": current.episode,
                  "status": "unstable" if info.get("unstable") else "ok", "success": bool(info["success"]),
                  "length": int(info["steps"]), "reward": current.reward,
                  "video": self._relative(info.get("video")),
                  "message": "MuJoCo reported a numerical instability" if info.get("unstable") else None}
        self._release(slot)
        return None, info["chunk_steps"], record, info.get("trajectory")

    def _relative(self, path: str | None) -> str | None:
        """Video paths are stored relative to the run's out_dir, so a run folder can be moved."""
        return None if path is None else os.path.relpath(path, self.spec.out_dir)

    def _fail(self, slot: int, error: Exception) -> SlotUpdate:
        current = self.episodes.pop(slot, None)
        if current is not None:
            _close_quietly(current.env)
        record = None
        if current is not None:
            record = {"task": current.task.name, "task_index": current.task.index, "episode": current.episode,
                      "status": "error", "success": False, "length": 0,
                      "message": f"{type(error).__name__}: {error}"}
        return SlotUpdate(slot, None, record)

    def _take_idle(self, task_name: str) -> gym.Env | None:
        """The task's most recently released idle env, taken out of the pool; None if there is none."""
        for i in range(len(self.idle_envs) - 1, -1, -1):
            if self.idle_envs[i][0] == task_name:
                return self.idle_envs.pop(i)[1]
        return None

    def _release(self, slot: int) -> None:
        """Return the slot's env to the pool, closing the least recently released idle envs beyond the limit."""
        current = self.episodes.pop(slot, None)
        if current is None:
            return
        self.idle_envs.append((current.task.name, current.env))
        while len(self.idle_envs) > self.spec.max_idle_envs:
            _close_quietly(self.idle_envs.pop(0)[1])

    def close(self) -> None:
        for slot in list(self.episodes):
            _close_quietly(self.episodes.pop(slot).env)
        for _, env in self.idle_envs:
            _close_quietly(env)
        self.idle_envs.clear()
        for buffers in self.buffers.values():
            buffers.close()
        self.buffers = {}


def _close_quietly(env: gym.Env) -> None:
    try:
        env.close()
    except Exception:  # noqa: BLE001  closing a broken env must not mask the original failure
        log.warning("closing an env failed", exc_info=True)


def limit_threads() -> None:
    """One compute thread per worker: BLAS/OpenMP pools sized for the whole machine oversubscribe
    the cores the workers share (measured: LIBERO 53 -> 80 steps/s on 2 cores). The variables
    cover libraries loaded later (numba, robosuite); threadpoolctl resizes those already loaded
    (numpy's OpenBLAS comes in with the spawned process's first imports). Worker processes only."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def worker_main(conn: Connection, spec: WorkerSpec) -> None:
    """Entry point of a worker process: answer command lists until told to stop."""
    logging.basicConfig(level=logging.WARNING, format="[worker %(process)d] %(levelname)s %(message)s")
    limit_threads()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the engine's to handle; it stops the workers
    worker = RolloutWorker(spec, shared_memory=True)
    try:
        while True:
            try:
                commands = conn.recv()
            except EOFError:
                break
            if commands is None:
                break
            conn.send([worker.handle(command) for command in commands])
    finally:
        worker.close()
