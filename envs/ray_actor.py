"""The inside of a Ray rollout actor: whole episodes on its own env slots with its own policy copy.

`EpisodeRunner` is a plain class (tested in-process); `RayEpisodeRunner` is it in an actor's process, which
envs/ray_engine.py wraps with `ray.remote`. This module imports neither ray (until an actor runs) nor the
driver's modules, so an actor starts with few imports.

Each `run_episode` call is one episode, a coroutine on the actor's event loop: the env slots are a
`RolloutWorker` (the wrapper stack and reset/step logic of the local engine's workers, observations
passed inline: driver and envs share no memory), and the episodes running on the actor meet in
`ActionBatcher`, which makes ONE policy call once every running episode waits for actions. The batch is
`envs.worker.policy_batch`, as the local engine's, `episode.seed` and `episode.step` included, so a learned
policy acts bit for bit as it does there (policies/acting.py says why the grouping of rows into batches does
not matter). The policy arrives pickled once per actor; a learned one unpickles onto this process's device
(`PolicyActor`: "auto" is the actor's GPU when Ray gave it one). A policy that says ``runs_in_worker`` (a
scripted expert) comes in the `WorkerSpec` instead and runs each episode whole, with the worker's "run"
command: no batching and no await per step, as in the local engine's workers.

A finished episode comes back as an `EpisodeResult`: the record dict the worker made, the trajectory
(for collection), the mp4's bytes (the file is written on the actor's node, read and deleted there) and
the env steps it took. Everything runs in the event loop's one thread, so the GL contexts stay in it.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import os
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from common.schema import ChunkPolicy, Task
from common.threads import limit_openmp_spinning
from envs.worker import RolloutWorker, WorkerSpec, limit_threads, policy_batch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpisodeJob:
    """One episode to run: the request, the seed its env is reset with, and whether it is filmed."""

    task: Task
    episode: int
    seed: int  # envs.rollout.episode_seed(rollout.seed, request): reset seed and policy noise seed
    video: bool = False


@dataclass
class EpisodeResult:
    record: dict[str, Any]  # EpisodeRecord fields, as RolloutWorker reports them
    steps: int  # env steps executed
    trajectory: dict[str, Any] | None = None  # the episode's arrays, when recording trajectories
    video: bytes | None = None  # the mp4 named by record["video"] (a path relative to the run's out_dir)


def scratch_folder(out_dir: Path) -> Path:
    """A folder on the actor's node for files its envs write (videos before they are sent, fault markers);
    named after the run's out_dir, so an actor restarted on the same node finds what its predecessor left."""
    digest = hashlib.sha256(str(Path(out_dir).resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "mtpolicy_ray" / digest


class ActionBatcher:
    """Gathers the running episodes' requests for actions into one policy call.

    The call is made when every running episode waits for actions (a cooperative event loop: an episode
    that does not wait is stepping its env and will wait or finish). Returns chunks cut to
    `n_action_steps`.
    """

    def __init__(self, n_action_steps: int):
        self.n_action_steps = n_action_steps
        self.policy: ChunkPolicy | None = None
        self.running = 0
        self._waiting: list[tuple[tuple[dict[str, Any], EpisodeJob, int], asyncio.Future]] = []

    def enter(self) -> None:
        self.running += 1

    def leave(self) -> None:
        self.running -= 1
        self._flush_when_all_wait()

    async def act(self, obs: dict[str, Any], job: EpisodeJob, steps: int) -> np.ndarray:
        future = asyncio.get_running_loop().create_future()
        self._waiting.append(((obs, job, steps), future))
        self._flush_when_all_wait()
        chunk = await future
        await asyncio.sleep(0)  # let episodes that just arrived reset and join the next call
        return chunk

    def _flush_when_all_wait(self) -> None:
        if not self._waiting or len(self._waiting) < self.running:
            return
        waiting, self._waiting = self._waiting, []
        try:
            rows = [row for row, _ in waiting]
            batch = policy_batch([obs for obs, _, _ in rows], [job.task for _, job, _ in rows],
                                 [job.seed for _, job, _ in rows], [steps for _, _, steps in rows])
            chunks = np.asarray(self.policy.predict_action_chunk(batch))
            if chunks.ndim != 3 or chunks.shape[0] != len(waiting) or chunks.shape[1] < self.n_action_steps:
                raise ValueError(f"policy returned actions of shape {chunks.shape}; expected "
                                 f"(B={len(waiting)}, T>={self.n_action_steps}, Da)")
        except Exception as error:  # noqa: BLE001  every waiting episode fails with it; the driver stops the run
            for _, future in waiting:
                future.set_exception(error)
            return
        for (_, future), chunk in zip(waiting, chunks):
            future.set_result(chunk[: self.n_action_steps])


class EpisodeRunner:
    """A rollout actor's state: env slots (a RolloutWorker), the policy copy and the batcher.

    `spec.out_dir` is the run's out_dir on the driver; the envs write into `scratch_folder(out_dir)` here.
    """

    def __init__(self, spec: WorkerSpec, policy_threads: int = 1, gpu_ids: list[int] | None = None):
        self.scratch = scratch_folder(spec.out_dir)
        self.worker = RolloutWorker(replace(spec, out_dir=self.scratch))
        self.policy_threads = policy_threads
        self.batcher = ActionBatcher(spec.n_action_steps)
        self.policy_key: Any = None
        self._slots = itertools.count()
        self.info = {"pid": os.getpid(), "gl": os.environ.get("MUJOCO_GL")}
        if gpu_ids:
            self.info |= _render_on_gpu(int(gpu_ids[0]))

    async def ready(self) -> dict[str, Any]:
        """What this actor runs on (process id, GL backend and, on a GPU, the EGL device and GL_RENDERER)."""
        return self.info

    async def run_episode(self, job: EpisodeJob, policy_box: list) -> EpisodeResult:
        """Run one episode to its end. `policy_box` is [ObjectRef of the policy] (or [policy] in-process):
        boxed, so Ray does not fetch the policy for every call; it is fetched once per policy. [None] when
        the policy is the worker's own (`WorkerSpec.policy`, a scripted expert)."""
        slot = next(self._slots)
        stem = str(self.scratch / "videos" / f"{job.task.name}_ep{job.episode:03d}") if job.video else None
        if self.worker.spec.policy is not None:  # the whole episode here, in this thread (its GL context's)
            update = self.worker.handle(("run", slot, job.task.name, job.episode, job.seed, stem))
            return EpisodeResult(update.record, update.steps, update.trajectory, self._take_video(update.record))
        await self._load_policy(policy_box)
        self.batcher.enter()
        try:
            await asyncio.sleep(0)  # episodes arriving together enter before any acts: their first call is one
            update = self.worker.handle(("reset", slot, job.task.name, job.episode, job.seed, stem))
            steps = 0
            while update.has_obs:
                chunk = await self.batcher.act(update.obs, job, steps)
                update = self.worker.handle(("step", slot, chunk))
                steps += update.steps
        finally:
            self.batcher.leave()
        return EpisodeResult(update.record, steps, update.trajectory, self._take_video(update.record))

    async def _load_policy(self, policy_box: list) -> None:
        key = policy_box[0]
        is_ref = type(key).__name__ == "ObjectRef"  # in-process (tests) the box holds the policy itself
        if key is self.policy_key or (is_ref and key == self.policy_key):
            return
        policy = (await key) if is_ref else key  # a learned policy unpickles onto this process's device
        if "torch" in sys.modules:  # a learned policy: the thread count is part of its arithmetic
            sys.modules["torch"].set_num_threads(self.policy_threads)
        self.batcher.policy, self.policy_key = policy, key

    def _take_video(self, record: dict[str, Any] | None) -> bytes | None:
        if not record or not record.get("video"):
            return None
        path = self.scratch / record["video"]
        data = path.read_bytes()
        path.unlink()
        return data

    def close(self) -> None:
        self.worker.close()


class RayEpisodeRunner(EpisodeRunner):
    """`EpisodeRunner` as a Ray actor (a process of its own): one compute thread, as the local engine's
    workers, and the GPU it renders and acts on is the one Ray assigned."""

    def __init__(self, spec: WorkerSpec, policy_threads: int = 1):
        import ray

        limit_openmp_spinning()  # before torch is loaded (it comes with a learned policy's weights)
        limit_threads()
        super().__init__(spec, policy_threads, gpu_ids=[int(i) for i in ray.get_gpu_ids()])
        self.info["node"] = ray.get_runtime_context().get_node_id()[:8]


def _render_on_gpu(cuda_id: int) -> dict[str, Any]:
    """Point MuJoCo's EGL rendering at GPU `cuda_id` and check it (GL_RENDERER); untested on a GPU."""
    from envs.gl_device import check_gpu_renderer, gl_renderer, select_egl_device

    if os.environ.get("MUJOCO_GL", "").lower() != "egl":
        log.warning("GPU %d assigned but MUJOCO_GL=%s: rendering stays off the GPU", cuda_id,
                    os.environ.get("MUJOCO_GL"))
        return {"gpu": cuda_id}
    device = select_egl_device(cuda_id)
    renderer = gl_renderer()
    check_gpu_renderer(renderer, cuda_id)
    return {"gpu": cuda_id, "egl_device": device, "gl_renderer": renderer}
