"""The parallel rollout engine: worker processes own the envs, the engine owns the policy.

    engine = RolloutEngine(suite, RolloutConfig(num_workers=2), n_obs_steps=1, n_action_steps=1,
                           out_dir=Path("outputs/eval/x"))
    engine.run(policy, requests, on_record=journal.append)

Each engine step sends one command list to every worker (resets for free slots, action
chunks for running episodes), gathers the observation windows, and makes ONE batched policy
call for all running episodes. A worker that raises reports the episode as an error; a
worker that dies (segfault, OOM kill, hang past `step_timeout_s`) has its running episodes
recorded as errors and is replaced by a fresh process.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from envs.results import EpisodeRecord
from envs.suites import Suite
from envs.worker import SlotUpdate, WorkerSpec, worker_main
from schema import TASK_INDEX, TASK_INSTRUCTION, ChunkPolicy, Task

log = logging.getLogger(__name__)


@dataclass
class RolloutConfig:
    """How episodes are spread over processes, and which get videos."""

    num_workers: int = 2  # worker processes (one core each is the sweet spot)
    envs_per_worker: int = 4  # env slots per worker; more slots amortise the per-step round trip
    videos_per_task: int = 1  # record the first K episodes of each task as mp4
    video_camera: str = "corner"  # camera of the videos (independent of the policy's cameras)
    video_size: int = 256  # video frames are square, pixels per side
    video_fps: int = 30
    step_timeout_s: float = 300.0  # a worker silent for this long is killed and replaced
    seed: int = 0  # episode e of task i is reset with seed + 1000 * i + e


@dataclass(frozen=True)
class EpisodeRequest:
    task: Task
    episode: int


@dataclass
class _Slot:
    worker: int
    index: int
    request: EpisodeRequest | None = None
    obs: dict[str, Any] | None = None
    chunk: np.ndarray | None = None


class _WorkerHandle:
    def __init__(self, ctx: mp.context.BaseContext, spec: WorkerSpec, worker_id: int):
        self.id = worker_id
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


class RolloutEngine:
    """Runs episode requests with a policy over worker processes; see the module docstring."""

    def __init__(self, suite: Suite, config: RolloutConfig, n_obs_steps: int, n_action_steps: int,
                 out_dir: Path, progress: bool = True):
        self.suite, self.config = suite, config
        self.n_action_steps = n_action_steps
        self.out_dir = Path(out_dir)
        self.progress = progress
        self.spec = WorkerSpec(suite=suite, n_obs_steps=n_obs_steps, n_action_steps=n_action_steps,
                               out_dir=self.out_dir, record_videos=config.videos_per_task > 0,
                               video_camera=config.video_camera, video_size=config.video_size,
                               video_fps=config.video_fps)
        self.ctx = mp.get_context("spawn")  # no GL context or torch thread pool is inherited
        self.env_steps = 0

    def run(self, policy: ChunkPolicy, requests: Iterable[EpisodeRequest],
            on_record: Callable[[EpisodeRecord], None]) -> None:
        """Run every request; `on_record` is called once per finished episode, in finishing order."""
        queue = deque(requests)
        if not queue:
            return
        cfg = self.config
        num_workers = max(1, min(cfg.num_workers, len(queue)))
        workers = [_WorkerHandle(self.ctx, self.spec, i) for i in range(num_workers)]
        slots = [_Slot(w, s) for w in range(num_workers) for s in range(cfg.envs_per_worker)]
        bar = tqdm(total=len(queue), desc=self.suite.name, unit="ep", disable=not self.progress, dynamic_ncols=True,
                   mininterval=0.5 if sys.stderr.isatty() else 30.0)  # a log file gets a line every 30 s
        stats = {"done": 0, "success": 0, "start": time.monotonic()}

        def finish(record: EpisodeRecord) -> None:
            on_record(record)
            stats["done"] += 1
            stats["success"] += int(record.success)
            elapsed = max(time.monotonic() - stats["start"], 1e-9)
            bar.set_postfix(success=f"{stats['success'] / stats['done']:.2f}", steps_s=f"{self.env_steps / elapsed:.0f}")
            bar.update(1)

        try:
            while queue or any(s.request for s in slots):
                self._assign(slots, queue)
                self._exchange(workers, slots, finish)
                self._predict(policy, slots)
        finally:
            bar.close()
            for worker in workers:
                worker.stop()

    def _assign(self, slots: list[_Slot], queue: deque[EpisodeRequest]) -> None:
        for slot in slots:
            if slot.request is None and queue:
                slot.request, slot.obs, slot.chunk = queue.popleft(), None, None

    def _reset_command(self, slot: _Slot) -> tuple:
        request, cfg = slot.request, self.config
        seed = cfg.seed + 1000 * request.task.index + request.episode
        stem = None
        if request.episode < cfg.videos_per_task:
            stem = str(self.out_dir / "videos" / f"{request.task.name}_ep{request.episode:03d}")
        return ("reset", slot.index, request.task.name, request.episode, seed, stem)

    def _exchange(self, workers: list[_WorkerHandle], slots: list[_Slot],
                  finish: Callable[[EpisodeRecord], None]) -> None:
        """Send each worker its commands, collect the answers, replace workers that died."""
        pending: dict[int, list[_Slot]] = {}
        for worker in workers:
            mine = [s for s in slots if s.worker == worker.id and s.request is not None]
            commands = [self._reset_command(s) if s.obs is None else ("step", s.index, s.chunk) for s in mine]
            if not commands:
                continue
            try:
                worker.conn.send(commands)
                pending[worker.id] = mine
            except (BrokenPipeError, OSError) as error:
                self._replace(workers, worker, slots, finish, f"worker unreachable: {error}")
        deadline = time.monotonic() + self.config.step_timeout_s
        while pending:
            ready = wait([workers[w].conn for w in pending], timeout=max(0.0, deadline - time.monotonic()))
            if not ready:
                for worker_id in list(pending):
                    self._replace(workers, workers[worker_id], slots, finish,
                                  f"worker hung for more than {self.config.step_timeout_s:.0f} s")
                    pending.pop(worker_id)
                return
            for worker_id in [w for w in pending if workers[w].conn in ready]:
                worker = workers[worker_id]
                try:
                    updates: list[SlotUpdate] = worker.conn.recv()
                except (EOFError, OSError):
                    worker.process.join(1.0)
                    self._replace(workers, worker, slots, finish,
                                  f"worker process died (exit code {worker.process.exitcode})")
                    pending.pop(worker_id)
                    continue
                by_index = {s.index: s for s in pending.pop(worker_id)}
                for update in updates:
                    self._apply(by_index[update.slot], update, finish)

    def _apply(self, slot: _Slot, update: SlotUpdate, finish: Callable[[EpisodeRecord], None]) -> None:
        self.env_steps += update.steps
        if update.record is not None:
            finish(EpisodeRecord.from_dict(update.record))
        if update.obs is None:
            if update.record is None:  # cannot happen: a worker always reports why a slot ended
                raise RuntimeError(f"worker {slot.worker} ended slot {slot.index} without a record")
            slot.request, slot.obs, slot.chunk = None, None, None
        else:
            slot.obs, slot.chunk = update.obs, None

    def _replace(self, workers: list[_WorkerHandle], worker: _WorkerHandle, slots: list[_Slot],
                 finish: Callable[[EpisodeRecord], None], message: str) -> None:
        """Record the dead worker's running episodes as errors and start a fresh worker."""
        log.error("worker %d: %s; its running episodes are recorded as errors and it is replaced",
                  worker.id, message)
        for slot in slots:
            if slot.worker == worker.id and slot.request is not None:
                request = slot.request
                finish(EpisodeRecord(task=request.task.name, task_index=request.task.index,
                                     episode=request.episode, status="error", success=False, length=0,
                                     message=message))
                slot.request, slot.obs, slot.chunk = None, None, None
        worker.process.kill()
        worker.process.join()
        worker.conn.close()
        workers[worker.id] = _WorkerHandle(self.ctx, self.spec, worker.id)

    def _predict(self, policy: ChunkPolicy, slots: list[_Slot]) -> None:
        """One batched policy call for every running episode."""
        active = [s for s in slots if s.request is not None and s.obs is not None]
        if not active:
            return
        batch: dict[str, Any] = {key: np.stack([s.obs[key] for s in active]) for key in active[0].obs
                                 if key != TASK_INDEX}
        batch[TASK_INDEX] = np.array([s.request.task.index for s in active], dtype=np.int64)
        batch[TASK_INSTRUCTION] = [s.request.task.instruction for s in active]
        chunks = np.asarray(policy.predict_action_chunk(batch))
        if chunks.ndim != 3 or chunks.shape[0] != len(active) or chunks.shape[1] < self.n_action_steps:
            raise ValueError(f"policy returned actions of shape {chunks.shape}; expected "
                             f"(B={len(active)}, T>={self.n_action_steps}, Da)")
        for slot, chunk in zip(active, chunks):
            slot.chunk = chunk[: self.n_action_steps]
