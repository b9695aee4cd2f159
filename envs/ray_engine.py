"""The Ray rollout backend: actors on a Ray cluster (or a local one) run whole episodes.

    python eval.py rollout.backend=ray                                   # a local Ray cluster, 2 actors
    python eval.py rollout.backend=ray rollout.ray.address=HEAD:6379 rollout.ray.num_actors=64
    python collect.py rollout.backend=ray                                # collection too

`RayRolloutEngine` takes the local engine's arguments and calls (`run`, `start`, `close`, `with`), so the
workflows build either through `envs.rollout.make_engine`. Each actor (`envs.ray_actor.EpisodeRunner`)
owns `rollout.envs_per_worker` env slots and a copy of the policy (`ray.put` once, when the actors start;
on one GPU with `rollout.ray.num_gpus_per_actor=1`). A policy that says ``runs_in_worker`` (the scripted
experts) travels in the actors' `WorkerSpec`, as it does to the local engine's workers, and runs whole
episodes beside its env. The driver keeps at most that many episodes in flight per actor and
hands every finished episode to the same `on_record` callback as the local engine (the resume journal),
in finishing order; videos come back as bytes and are written under out_dir here.

Faults (docs/ray.md):
- an actor that dies (crash, OOM kill, lost node) is restarted by Ray (`rollout.ray.max_restarts`); its
  running episodes go back to the queue and run again, at most `max_episode_retries` times, on whichever
  actor is free; the record counts the retries. The driver re-submits instead of Ray's
  `max_task_retries`, which would retry without the record knowing;
- an episode running longer than `episode_timeout_s` is an error record (hung) and its actor is killed and
  restarted (its other episodes are retried);
- no actor able to run episodes for `actor_start_timeout_s` stops the run: what finished is in the journal;
- Ctrl-C stops the actors; the journal holds every episode that finished, and re-running resumes.
An episode's record is appended once, when it finishes; a retry never adds a second one.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from common.atomic import write_bytes
from common.schema import ChunkPolicy
from envs.ray_actor import EpisodeJob, EpisodeResult, RayEpisodeRunner
from envs.ray_cluster import connect
from envs.registry import Suite
from envs.results import EpisodeRecord
from envs.rollout import (
    ENGINES,
    Backend,
    EpisodeRequest,
    RolloutConfig,
    RunProgress,
    _split_task_major,
    episode_seed,
    worker_spec,
)

log = logging.getLogger(__name__)

PING_INTERVAL_S = 1.0  # how often an actor that is not ready (starting, restarting) is asked again
WAIT_S = 1.0  # longest wait for results, so Ctrl-C and deadlines are seen promptly
CREATION_FAILED = "creation task"  # in Ray's message when an actor's __init__ raised


def lost_actor_errors() -> tuple[type[BaseException], ...]:
    """What `ray.get` raises for a task whose actor, process or node went away (not the task's own error)."""
    from ray import exceptions

    return (exceptions.RayActorError, exceptions.OutOfMemoryError, exceptions.NodeDiedError,
            exceptions.WorkerCrashedError, exceptions.ObjectLostError, exceptions.ActorUnschedulableError)


@dataclass
class _Job:
    request: EpisodeRequest
    retries: int = 0  # runs lost with a dead actor so far


@dataclass
class _Actor:
    index: int
    handle: Any
    lanes: list[int]  # the run's queues this actor's slots take episodes from (one per slot)
    ready: bool = False
    ping: Any = None  # ObjectRef of the pending `ready` call
    next_ping: float = 0.0
    busy: set[int] = field(default_factory=set)  # lanes with an episode in flight
    last_error: str | None = None  # why it was last found not ready


@dataclass
class _Flight:
    job: _Job
    actor: _Actor
    lane: int
    deadline: float
    hung: bool = False


@dataclass
class _Run:
    queues: list[deque[_Job]]  # one task-major block per actor slot (lane), as the local engine's slots
    finish: Callable[[EpisodeRecord], None]
    on_trajectory: Callable[[EpisodeRecord, dict[str, Any]], None] | None
    retry: deque[_Job] = field(default_factory=deque)  # episodes whose actor died: run first
    flights: dict[Any, _Flight] = field(default_factory=dict)  # ObjectRef -> episode in flight
    last_ready: float = field(default_factory=time.monotonic)  # when some actor last could take episodes

    def pending(self) -> bool:
        return bool(self.retry) or any(self.queues)


class RayRolloutEngine:
    """Runs episode requests with a policy on Ray actors; see the module docstring."""

    def __init__(self, suite: Suite, config: RolloutConfig, policy: ChunkPolicy, out_dir: Path,
                 progress: bool = True, record_trajectories: bool = False, action_noise: float = 0.0):
        self.suite, self.config, self.ray_config, self.policy = suite, config, config.ray, policy
        self.out_dir = Path(out_dir)
        self.progress = progress
        self.spec = worker_spec(suite, config, policy, self.out_dir, record_trajectories, action_noise)
        self.env_steps = 0
        self._actors: list[_Actor] | None = None
        self._spec_ref: Any = None
        self._policy_box: list | None = None  # [ObjectRef of the policy] while the actors live

    def run(self, requests: Iterable[EpisodeRequest], on_record: Callable[[EpisodeRecord], None],
            on_trajectory: Callable[[EpisodeRecord, dict[str, Any]], None] | None = None) -> None:
        """Run every request; `on_record` is called once per finished episode, in finishing order."""
        requests = list(requests)
        if not requests:
            return
        progress = RunProgress(self, len(requests), self.progress, on_record)

        started_here = self._actors is None
        if started_here:
            self.start()
        blocks = _split_task_major(requests, len(self._actors) * self.config.envs_per_worker)
        run = _Run(queues=[deque(_Job(r) for r in block) for block in blocks], finish=progress.finished,
                   on_trajectory=on_trajectory)
        try:
            while run.pending() or run.flights:
                self._ping()
                self._submit(run)
                self._receive(run)
                self._check_deadlines(run)
                self._check_progress(run)
        except BaseException:
            self.close()  # actors may be mid-episode: never reuse them
            raise
        finally:
            progress.close()
            if started_here:
                self.close()

    def start(self) -> None:
        """Connect to Ray and create the actors (they start in the background; `run` waits for them)."""
        import ray

        if self._actors is not None:
            return
        cfg = self.ray_config
        connect(cfg, cfg.num_actors * cfg.num_cpus_per_actor)
        actor_class = ray.remote(RayEpisodeRunner).options(
            num_cpus=cfg.num_cpus_per_actor, num_gpus=cfg.num_gpus_per_actor, max_restarts=cfg.max_restarts,
            max_task_retries=0, scheduling_strategy="SPREAD")
        slots = self.config.envs_per_worker
        # Held here for the actors' lives: Ray re-runs a restarted actor's constructor with these arguments.
        self._spec_ref = ray.put(self.spec)
        # Boxed, so that Ray does not fetch it with every episode: each actor fetches it once. None: the policy
        # is in the spec (it runs in the actors' workers).
        self._policy_box = [None if self.spec.policy is not None else ray.put(self.policy)]
        self._actors = [_Actor(i, actor_class.remote(self._spec_ref, self.config.policy_threads),
                               lanes=list(range(i * slots, (i + 1) * slots))) for i in range(cfg.num_actors)]

    def wait_ready(self, timeout_s: float | None = None) -> float:
        """Start the actors if needed and wait until every one can take episodes; returns the seconds waited."""
        import ray

        self.start()
        started, deadline = time.monotonic(), time.monotonic() + (timeout_s or self.ray_config.actor_start_timeout_s)
        while not all(actor.ready for actor in self._actors):
            if time.monotonic() > deadline:
                raise RuntimeError(f"Ray actors not ready after {timeout_s} s: "
                                   f"{[a.last_error for a in self._actors if not a.ready]}")
            self._ping()
            pings = {actor.ping: actor for actor in self._actors if actor.ping is not None}
            ready, _ = ray.wait(list(pings), num_returns=1, timeout=WAIT_S) if pings else ([], [])
            for ref in ready:
                self._answer_ping(pings[ref], ref)
            if not pings:
                time.sleep(0.05)
        return time.monotonic() - started

    def close(self) -> None:
        """Stop the actors (their envs with them)."""
        import ray

        for actor in self._actors or []:
            try:
                ray.kill(actor.handle, no_restart=True)
            except Exception:  # an actor that is already gone
                log.debug("actor %d was already gone", actor.index, exc_info=True)
        self._actors, self._spec_ref, self._policy_box = None, None, None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _ping(self) -> None:
        """Ask every actor that is not known to be ready whether it is (again)."""
        now = time.monotonic()
        for actor in self._actors:
            if not actor.ready and actor.ping is None and now >= actor.next_ping:
                actor.ping = actor.handle.ready.remote()

    def _submit(self, run: _Run) -> None:
        """Give every idle lane of a ready actor its next episode: a retried one first, then the lane's own
        block (consecutive episodes of a task reuse the env the last one left), then steal."""
        for actor in self._actors:
            for lane in actor.lanes:
                if not actor.ready or not run.pending():
                    break
                if lane in actor.busy:
                    continue
                job = self._next_job(run, lane)
                request = job.request
                episode = EpisodeJob(request.task, request.episode, episode_seed(self.config.seed, request),
                                     video=request.episode < self.config.videos_per_task)
                ref = actor.handle.run_episode.remote(episode, self._policy_box)
                run.flights[ref] = _Flight(job, actor, lane, time.monotonic() + self.ray_config.episode_timeout_s)
                actor.busy.add(lane)

    @staticmethod
    def _next_job(run: _Run, lane: int) -> _Job:
        if run.retry:
            return run.retry.popleft()
        if run.queues[lane]:
            return run.queues[lane].popleft()
        return max(run.queues, key=len).pop()  # the far end: other tasks than that queue's lane runs

    def _receive(self, run: _Run) -> None:
        """Wait briefly for results and pings, and take every one that is ready."""
        import ray

        pings = {actor.ping: actor for actor in self._actors if actor.ping is not None}
        refs = list(run.flights) + list(pings)
        if not refs:
            time.sleep(min(WAIT_S, PING_INTERVAL_S))
            return
        deadlines = [f.deadline for f in run.flights.values() if not f.hung]
        timeout = max(0.0, min([WAIT_S, *[d - time.monotonic() for d in deadlines]]))
        ready, _ = ray.wait(refs, num_returns=1, timeout=timeout)
        if ready:
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        for ref in ready:
            if ref in pings:
                self._answer_ping(pings[ref], ref)
            else:
                self._finish_flight(run, run.flights.pop(ref), ref)

    def _answer_ping(self, actor: _Actor, ref: Any) -> None:
        import ray

        actor.ping = None
        try:
            info = ray.get(ref)
        except lost_actor_errors() as error:  # restarting, not placed yet, or dead for good: ask again later
            if CREATION_FAILED in str(error):  # its __init__ raised: a restart raises the same
                raise RuntimeError(f"Ray actor {actor.index} could not start: {error}") from None
            actor.next_ping = time.monotonic() + PING_INTERVAL_S
            actor.last_error = _first_line(error)
            log.debug("actor %d not ready: %s", actor.index, error)
            return
        actor.ready, actor.last_error = True, None
        log.info("Ray actor %d ready: %s", actor.index, info)

    def _finish_flight(self, run: _Run, flight: _Flight, ref: Any) -> None:
        import ray

        flight.actor.busy.discard(flight.lane)
        job, request = flight.job, flight.job.request
        try:
            result: EpisodeResult = ray.get(ref)
        except lost_actor_errors() as error:
            flight.actor.ready = False
            if flight.hung:
                message = f"hung: still running after {self.ray_config.episode_timeout_s:.0f} s; its actor was restarted"
                run.finish(_error_record(request, message, job.retries))
            elif job.retries < self.ray_config.max_episode_retries:
                log.warning("actor %d died running %s episode %d; running it again (retry %d of %d)",
                            flight.actor.index, request.task.name, request.episode, job.retries + 1,
                            self.ray_config.max_episode_retries)
                run.retry.append(_Job(request, job.retries + 1))
            else:
                message = (f"its actor died {job.retries + 1} times (rollout.ray.max_episode_retries="
                           f"{self.ray_config.max_episode_retries}): {_first_line(error)}")
                run.finish(_error_record(request, message, job.retries))
            return
        except ray.exceptions.RayTaskError as error:  # the policy or the engine raised: stop, as the local engine
            raise error.as_instanceof_cause() from None
        run.last_ready = time.monotonic()
        self._deliver(run, result, job)

    def _deliver(self, run: _Run, result: EpisodeResult, job: _Job) -> None:
        self.env_steps += result.steps
        record = EpisodeRecord.from_dict(result.record)
        record.retries = job.retries
        if result.video is not None:
            write_bytes(self.out_dir / record.video, result.video)
        if result.trajectory is not None and run.on_trajectory is not None:
            run.on_trajectory(record, result.trajectory)
        run.finish(record)

    def _check_deadlines(self, run: _Run) -> None:
        """Kill (and so restart) the actor of an episode past its deadline; that episode becomes an error, the
        actor's other episodes (stalled behind it) are retried."""
        import ray

        now = time.monotonic()
        for flight in run.flights.values():
            if not flight.hung and flight.actor.ready and now >= flight.deadline:
                flight.hung = True
                flight.actor.ready = False
                log.error("actor %d: %s episode %d still running after %.0f s; restarting the actor",
                          flight.actor.index, flight.job.request.task.name, flight.job.request.episode,
                          self.ray_config.episode_timeout_s)
                ray.kill(flight.actor.handle, no_restart=False)

    def _check_progress(self, run: _Run) -> None:
        """Stop when no actor could take episodes for `actor_start_timeout_s` while some wait."""
        import ray

        now = time.monotonic()
        if any(actor.ready for actor in self._actors):
            run.last_ready = now
        elif run.pending() and now - run.last_ready > self.ray_config.actor_start_timeout_s:
            cfg = self.ray_config
            said = {actor.index: actor.last_error for actor in self._actors if actor.last_error}
            raise RuntimeError(
                f"no Ray actor could run episodes for {cfg.actor_start_timeout_s:.0f} s "
                f"(rollout.ray.actor_start_timeout_s): {cfg.num_actors} actors of {cfg.num_cpus_per_actor} CPU and "
                f"{cfg.num_gpus_per_actor} GPU each; cluster resources available now: {ray.available_resources()}; "
                f"actors said: {said or 'nothing'}. The finished episodes are saved; re-run to resume")


def _error_record(request: EpisodeRequest, message: str, retries: int) -> EpisodeRecord:
    return EpisodeRecord(task=request.task.name, task_index=request.task.index, episode=request.episode,
                         status="error", success=False, length=0, message=message, retries=retries)


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


ENGINES.register(Backend.ray.value, RayRolloutEngine)
