"""The parallel rollout engine: worker processes own the envs, the engine owns the policy.

    engine = RolloutEngine(suite, RolloutConfig(num_workers=2), policy, out_dir=Path("outputs/eval/x"))
    engine.run(requests, on_record=journal.append)

`make_engine` builds the engine `rollout.backend` names from the registry `ENGINES`: this one ("local")
or Ray actors on a cluster ("ray", envs/ray_engine.py), which take the same arguments and calls.

`run` starts and stops the worker processes itself; inside ``with engine:`` they (and their
envs) stay up across several `run` calls.

Each engine step sends one command list to every idle worker (resets for free slots, "step" for
running episodes whose action chunk is written into their shared memory), takes every answer that is
ready, and makes ONE batched policy call for all episodes waiting for actions. Observations and
actions never travel pickled (`envs.transport`). A policy that says ``runs_in_worker = True`` (the
scripted experts: cheap, CPU, per-sample Python) is pickled into the workers instead, and each runs
whole episodes next to its env: no round trip per step at all. Workers never wait for one another (a worker
building a scene stalls nobody). Each slot runs its own contiguous block of the task-major
episode list, so it builds an env for few tasks (building one costs 0.2 s in Meta-World and
seconds in LIBERO); a slot that runs dry steals from the far end of the longest block.
A worker that raises reports the episode as an error; a
worker that dies (segfault, OOM kill, hang past `step_timeout_s`) has its running episodes
recorded as errors and is replaced by a fresh process.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing as mp
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Self

import numpy as np

from common.progress import progress_bar
from common.registry import Registry
from common.schema import ChunkPolicy, Task
from envs.registry import Suite
from envs.results import EpisodeRecord
from envs.transport import SlotViews, unlink_block
from envs.worker import SlotUpdate, WorkerSpec, policy_batch, worker_main

log = logging.getLogger(__name__)

# Engines by `rollout.backend`; envs/ray_engine.py registers "ray" (it imports ray only when used).
ENGINES: Registry[type] = Registry("rollout backend", discover="envs")


class Backend(StrEnum):
    local = "local"  # worker processes on this machine
    ray = "ray"  # Ray actors on this machine or a cluster (docs/ray.md)


class RayAuth(StrEnum):
    auto = "auto"  # a new local cluster: Ray's default (token); an address: token mode when a token exists
    token = "token"  # always token mode (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token)
    disabled = "disabled"  # no authentication: only on a private network


@dataclass
class RayConfig:
    """The Ray backend: where the actors run and what happens when they fail (docs/ray.md)."""

    address: str | None = None  # an existing cluster: "HOST:PORT", or "auto" (RAY_ADDRESS, or the cluster
    # `ray start` started on this machine); None: start a local cluster for this run
    num_actors: int = 2  # actors, each with rollout.envs_per_worker env slots and its own policy copy
    num_cpus_per_actor: float = 1.0
    num_gpus_per_actor: float = 0.0  # 1: the actor's policy and EGL rendering on its own GPU
    max_restarts: int = 3  # Ray restarts a dead actor (crash, lost node) at most this many times
    max_episode_retries: int = 2  # an episode whose actor died runs again at most this often (record: retries)
    episode_timeout_s: float = 1800.0  # an episode running longer is an error (hung); its actor is restarted
    actor_start_timeout_s: float = 300.0  # no actor able to run episodes for this long stops the run
    auth: RayAuth = RayAuth.auto  # auto, token or disabled (Ray 2.60 turns token authentication on)
    working_dir: str | None = None  # ship this folder to the nodes (runtime_env); None: same path on every node

    def __post_init__(self) -> None:
        if self.num_actors < 1 or self.max_restarts < 0 or self.max_episode_retries < 0:
            raise ValueError(f"rollout.ray: need num_actors >= 1, max_restarts >= 0 and max_episode_retries >= 0, "
                             f"got {self.num_actors}, {self.max_restarts} and {self.max_episode_retries}")
        if self.episode_timeout_s <= 0 or self.actor_start_timeout_s <= 0:
            raise ValueError(f"rollout.ray timeouts must be > 0, got episode_timeout_s={self.episode_timeout_s}, "
                             f"actor_start_timeout_s={self.actor_start_timeout_s}")


@dataclass
class RolloutConfig:
    """How episodes are spread over processes, and which get videos."""

    num_workers: int = 2  # worker processes (one core each is the sweet spot)
    envs_per_worker: int = 8  # env slots per worker; more slots amortise the per-step round trip
    pipeline_groups: int = 2  # a worker's slots in this many groups (at most one per slot): one steps
    # while the policy acts for another
    videos_per_task: int = 1  # record the first K episodes of each task as mp4
    video_camera: str | None = None  # camera of the videos (independent of the policy's); None: the suite's
    video_size: int = 256  # video frames are square, pixels per side
    video_fps: int = 30
    step_timeout_s: float = 300.0  # a worker silent for this long is killed and replaced
    seed: int = 0  # episode e of task i is reset with seed + 100_000 * i + e
    policy_batch_size: int = 8  # a learned policy acts on micro-batches of exactly this many episodes
    policy_threads: int = 1  # torch threads of a learned policy in the engine process (or each Ray actor)
    # (both fixed, so that a learned policy gives the same episodes whatever the worker count:
    # policies/acting.py says why)
    backend: Backend = Backend.local  # local (worker processes) or ray (actors on a cluster)
    ray: RayConfig = field(default_factory=RayConfig)  # used with backend=ray

    def __post_init__(self) -> None:
        if self.num_workers < 1 or self.envs_per_worker < 1:
            raise ValueError(f"rollout.num_workers and rollout.envs_per_worker must be >= 1, "
                             f"got {self.num_workers} and {self.envs_per_worker}")
        if self.pipeline_groups < 1:
            raise ValueError(f"rollout.pipeline_groups must be >= 1, got {self.pipeline_groups}")
        if self.videos_per_task < 0:
            raise ValueError(f"rollout.videos_per_task must be >= 0, got {self.videos_per_task}")
        if self.policy_batch_size < 1 or self.policy_threads < 1:
            raise ValueError(f"rollout.policy_batch_size and rollout.policy_threads must be >= 1, got "
                             f"{self.policy_batch_size} and {self.policy_threads}")


@dataclass(frozen=True)
class EpisodeRequest:
    task: Task
    episode: int


def episode_seed(seed: int, request: EpisodeRequest) -> int:
    """The seed episode `request` is reset with, and its policy noise drawn from."""
    return seed + 100_000 * request.task.index + request.episode


@dataclass
class _Slot:
    worker: int
    index: int
    group: int
    request: EpisodeRequest | None = None
    obs: dict[str, Any] | None = None  # the observation window (views into shared memory), None before reset
    chunk: np.ndarray | None = None
    steps: int = 0  # env steps of the running episode so far


@dataclass
class _Run:
    """The state of one `RolloutEngine.run`."""

    workers: list[_WorkerHandle]
    slots: list[_Slot]
    queues: list[deque[EpisodeRequest]]  # one per slot
    finish: Callable[[EpisodeRecord], None]
    on_trajectory: Callable[[EpisodeRecord, dict[str, Any]], None] | None = None
    busy: dict[tuple[int, int], float] = field(default_factory=dict)  # (worker, group) -> answer deadline
    inflight: dict[int, deque[int]] = field(default_factory=dict)  # worker -> groups sent, in order


def worker_spec(suite: Suite, config: RolloutConfig, policy: ChunkPolicy, out_dir: Path,
                record_trajectories: bool = False, action_noise: float = 0.0) -> WorkerSpec:
    """The env slots' settings, for either backend's workers; a policy that says ``runs_in_worker`` (a scripted
    expert) goes with them, to run whole episodes beside its envs."""
    video_camera = config.video_camera or suite.video_camera
    if config.videos_per_task > 0:
        suite.check_cameras([video_camera])
    return WorkerSpec(suite=suite, n_obs_steps=policy.n_obs_steps, n_action_steps=policy.n_action_steps,
                      out_dir=Path(out_dir), record_videos=config.videos_per_task > 0, video_camera=video_camera,
                      video_size=config.video_size, video_fps=config.video_fps,
                      max_idle_envs=config.envs_per_worker, record_trajectories=record_trajectories,
                      action_noise=action_noise,
                      policy=policy if getattr(policy, "runs_in_worker", False) else None)


def _split_task_major(requests: list[EpisodeRequest], parts: int) -> list[deque[EpisodeRequest]]:
    """Contiguous, near-equal blocks of a task-major list: each slot builds envs for few tasks."""
    bounds = np.linspace(0, len(requests), parts + 1).round().astype(int)
    return [deque(requests[a:b]) for a, b in itertools.pairwise(bounds)]


class _WorkerHandle:
    def __init__(self, ctx: mp.context.BaseContext, spec: WorkerSpec, worker_id: int):
        self.id = worker_id
        self.blocks: set[str] = set()  # names of the shared memory the worker made
        self.conn, child_conn = ctx.Pipe()
        self.process = ctx.Process(target=worker_main, args=(child_conn, spec), daemon=True,
                                   name=f"rollout-worker-{worker_id}")
        self.process.start()
        child_conn.close()

    def stop(self, timeout: float = 5.0) -> None:
        try:
            self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class RunProgress:
    """One `run`'s finished episodes: each goes to `on_record` (the journal), then to the progress bar (success
    so far, and env steps/s since that run started: an engine may serve several runs). Both engines use it."""

    def __init__(self, engine: Any, total: int, enabled: bool, on_record: Callable[[EpisodeRecord], None]):
        self.engine, self.on_record, self.done, self.success = engine, on_record, 0, 0
        self.start, self.steps_before = time.monotonic(), engine.env_steps
        self.bar = progress_bar(total, engine.suite.name, "ep", enabled)

    def steps_per_s(self) -> float:
        return (self.engine.env_steps - self.steps_before) / max(time.monotonic() - self.start, 1e-9)

    def finished(self, record: EpisodeRecord) -> None:
        self.on_record(record)
        self.done += 1
        self.success += int(record.success)
        self.bar.set_postfix(success=f"{self.success / self.done:.2f}", steps_s=f"{self.steps_per_s():.0f}",
                             refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


class RolloutEngine:
    """Runs episode requests with a policy over worker processes; see the module docstring."""

    def __init__(self, suite: Suite, config: RolloutConfig, policy: ChunkPolicy, out_dir: Path,
                 progress: bool = True, record_trajectories: bool = False, action_noise: float = 0.0):
        self.suite, self.config, self.policy = suite, config, policy
        self.n_action_steps = policy.n_action_steps
        self.out_dir = Path(out_dir)
        self.progress = progress
        self.spec = worker_spec(suite, config, policy, self.out_dir, record_trajectories, action_noise)
        self.in_workers = self.spec.policy is not None
        self.groups = min(config.pipeline_groups, config.envs_per_worker)
        self.ctx = mp.get_context("spawn")  # no GL context or torch thread pool is inherited
        self.env_steps = 0
        self._workers: list[_WorkerHandle] | None = None
        self._views: dict[tuple[int, int], SlotViews] = {}  # (worker, slot) -> its shared memory, across runs

    def run(self, requests: Iterable[EpisodeRequest], on_record: Callable[[EpisodeRecord], None],
            on_trajectory: Callable[[EpisodeRecord, dict[str, Any]], None] | None = None) -> None:
        """Run every request; `on_record` is called once per finished episode, in finishing order.

        With ``record_trajectories``, `on_trajectory(record, arrays)` also gets each finished
        episode's arrays (see `TrajectoryRecorderWrapper`); episodes that errored have none.
        """
        requests = list(requests)
        if not requests:
            return
        cfg = self.config
        progress = RunProgress(self, len(requests), self.progress, on_record)

        started_here = self._workers is None
        if started_here:
            self.start(num_workers=min(cfg.num_workers, len(requests)))
        num_workers = len(self._workers)
        run = _Run(workers=self._workers,
                   slots=[_Slot(w, s, s * self.groups // cfg.envs_per_worker)
                          for w in range(num_workers) for s in range(cfg.envs_per_worker)],
                   queues=_split_task_major(requests, num_workers * cfg.envs_per_worker), finish=progress.finished,
                   on_trajectory=on_trajectory)
        try:
            while any(run.queues) or any(s.request for s in run.slots):
                self._assign(run)
                self._send(run)
                self._receive(run)
                self._predict(run.slots)
        except BaseException:
            self.close()  # workers may be mid-episode: never reuse them
            raise
        finally:
            progress.close()
            if started_here:
                self.close()

    def start(self, num_workers: int | None = None) -> None:
        """Start the worker processes now, to keep them (and their envs) across several `run` calls."""
        if self._workers is None:
            count = num_workers or self.config.num_workers
            self._workers = [_WorkerHandle(self.ctx, self.spec, i) for i in range(count)]

    def close(self) -> None:
        """Stop the worker processes (their shared memory goes with them)."""
        for views in self._views.values():
            views.close()
        self._views = {}
        for worker in self._workers or []:
            worker.stop()
            for block in worker.blocks:  # unlinked by the worker as it closes; a killed one cannot
                unlink_block(block)
        self._workers = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _assign(self, run: _Run) -> None:
        """Give free slots the next episode of their own queue, or steal from the longest queue."""
        for slot, own in zip(run.slots, run.queues):
            if slot.request is not None or (slot.worker, slot.group) in run.busy:
                continue
            if own:
                slot.request = own.popleft()
            elif any(run.queues):  # steal from the far end: other tasks than its owner is running
                slot.request = max(run.queues, key=len).pop()
            slot.obs, slot.chunk = None, None

    def _command(self, slot: _Slot) -> tuple:
        """A new episode ("reset", or "run" for a policy in the workers), or "step" with its chunk written."""
        if slot.obs is not None:
            self._views[slot.worker, slot.index].write_action(slot.chunk)
            return ("step", slot.index)
        request, cfg = slot.request, self.config
        stem = None
        if request.episode < cfg.videos_per_task:
            stem = str(self.out_dir / "videos" / f"{request.task.name}_ep{request.episode:03d}")
        kind = "run" if self.in_workers else "reset"
        return (kind, slot.index, request.task.name, request.episode, episode_seed(cfg.seed, request), stem)

    def _send(self, run: _Run) -> None:
        """Send every idle slot group its commands (resets and action chunks), one message per group."""
        for worker in list(run.workers):
            for group in range(self.groups):
                if (worker.id, group) in run.busy:
                    continue
                mine = [s for s in run.slots if (s.worker, s.group) == (worker.id, group) and s.request is not None]
                commands = [self._command(s) for s in mine]
                if not commands:
                    continue
                try:
                    worker.conn.send(commands)
                except (BrokenPipeError, OSError) as error:
                    self._replace(run, worker, f"worker unreachable: {error}")
                    break
                run.busy[worker.id, group] = time.monotonic() + self.config.step_timeout_s
                run.inflight.setdefault(worker.id, deque()).append(group)

    def _receive(self, run: _Run) -> None:
        """Wait for at least one busy worker, then take every answer that is ready.

        Workers never wait for one another: a worker building a scene does not stall the rest.
        """
        if not run.busy:
            return
        timeout = max(0.0, min(run.busy.values()) - time.monotonic())
        waiting = [run.workers[w] for w, groups in run.inflight.items() if groups]
        ready = wait([worker.conn for worker in waiting], timeout=timeout)
        for worker in waiting:
            answers: list[list[SlotUpdate]] = []
            died = False
            try:  # only the pipe: an error while recording an answer (a full disk) is not a dead worker
                while worker.conn in ready and run.inflight[worker.id] and worker.conn.poll():
                    answers.append(worker.conn.recv())
                    del run.busy[worker.id, run.inflight[worker.id].popleft()]  # answers come in send order
            except (EOFError, OSError):
                died = True
            by_index = {s.index: s for s in run.slots if s.worker == worker.id}
            for updates in answers:
                for update in updates:
                    self._apply(by_index[update.slot], update, run)
            if died:
                worker.process.join(1.0)
                self._replace(run, worker, f"worker process died (exit code {worker.process.exitcode})")
                continue
            deadlines = [run.busy[worker.id, g] for g in run.inflight[worker.id]]
            if deadlines and time.monotonic() >= min(deadlines):
                self._replace(run, worker, f"worker hung for more than {self.config.step_timeout_s:.0f} s")

    def _apply(self, slot: _Slot, update: SlotUpdate, run: _Run) -> None:
        self.env_steps += update.steps
        if update.record is not None:
            record = EpisodeRecord.from_dict(update.record)
            if update.trajectory is not None and run.on_trajectory is not None:
                run.on_trajectory(record, update.trajectory)
            run.finish(record)
        key = (slot.worker, slot.index)
        if update.layout is not None:  # the worker (re)made the slot's shared memory
            if key in self._views:
                self._views.pop(key).close()
            self._views[key] = SlotViews(update.layout)
            run.workers[slot.worker].blocks.add(update.layout.block)
        if not update.has_obs:
            if update.record is None:  # cannot happen: a worker always reports why a slot ended
                raise RuntimeError(f"worker {slot.worker} ended slot {slot.index} without a record")
            slot.request, slot.obs, slot.chunk = None, None, None
        else:
            slot.steps = 0 if slot.obs is None else slot.steps + update.steps  # obs None: a reset's answer
            slot.obs, slot.chunk = self._views[key].obs, None

    def _replace(self, run: _Run, worker: _WorkerHandle, message: str) -> None:
        """Record the dead worker's running episodes as errors and start a fresh worker."""
        log.error("worker %d: %s; its running episodes are recorded as errors and it is replaced",
                  worker.id, message)
        for group in run.inflight.pop(worker.id, ()):
            run.busy.pop((worker.id, group), None)
        for slot in run.slots:
            if slot.worker == worker.id and slot.request is not None:
                request = slot.request
                run.finish(EpisodeRecord(task=request.task.name, task_index=request.task.index,
                                         episode=request.episode, status="error", success=False, length=0,
                                         message=message))
                slot.request, slot.obs, slot.chunk = None, None, None
        for key in [k for k in self._views if k[0] == worker.id]:
            self._views.pop(key).close()
        worker.process.kill()
        worker.process.join()
        worker.conn.close()
        for block in worker.blocks:  # the dead worker cannot unlink its shared memory: the engine does
            unlink_block(block)
        run.workers[worker.id] = _WorkerHandle(self.ctx, self.spec, worker.id)

    def _predict(self, slots: list[_Slot]) -> None:
        """One batched policy call for every episode waiting for actions."""
        active = [s for s in slots if s.request is not None and s.obs is not None and s.chunk is None]
        if not active:
            return
        batch = policy_batch([s.obs for s in active], [s.request.task for s in active],
                             [episode_seed(self.config.seed, s.request) for s in active], [s.steps for s in active])
        chunks = np.asarray(self.policy.predict_action_chunk(batch))
        if chunks.ndim != 3 or chunks.shape[0] != len(active) or chunks.shape[1] < self.n_action_steps:
            raise ValueError(f"policy returned actions of shape {chunks.shape}; expected "
                             f"(B={len(active)}, T>={self.n_action_steps}, Da)")
        for slot, chunk in zip(active, chunks):
            slot.chunk = chunk[: self.n_action_steps]


ENGINES.register(Backend.local.value, RolloutEngine)


def make_engine(suite: Suite, config: RolloutConfig, policy: ChunkPolicy, out_dir: Path, progress: bool = True,
                record_trajectories: bool = False, action_noise: float = 0.0):
    """The engine of `config.backend` (a RolloutEngine or one with its `run`/`start`/`close` calls)."""
    engine_class = ENGINES.get(str(config.backend))
    return engine_class(suite, config, policy, out_dir, progress=progress, record_trajectories=record_trajectories,
                        action_noise=action_noise)
