"""The rollout worker in-process: env reuse and eviction must not damage the envs that keep running."""

from __future__ import annotations

import numpy as np

import envs.rendering
from envs.config import EnvConfig
from envs.registry import make_suite
from envs.worker import RolloutWorker, WorkerSpec


def _worker(tmp_path, max_idle_envs: int) -> RolloutWorker:
    suite = make_suite(EnvConfig(suite="metaworld_mt10", cameras=["corner"], image_size=32))
    return RolloutWorker(WorkerSpec(suite=suite, n_obs_steps=1, n_action_steps=2, out_dir=tmp_path,
                                    record_videos=False, max_idle_envs=max_idle_envs))


def _run_slot0(worker: RolloutWorker, evict: bool):
    """Slot 0 runs reach-v3 episode 0 for three chunks. With `evict`, slot 1 starts an episode of another
    task before each chunk: its third reset closes an idle env (max_idle_envs=1) right after slot 0 rendered,
    so with slot 0's GL context current, as in a worker whose slots interleave."""
    tasks = [t.name for t in worker.spec.suite.tasks]
    worker.handle(("reset", 0, tasks[0], 0, 7, None))
    for task in tasks[1:4]:
        if evict:
            worker.handle(("reset", 1, task, 0, 7, None))
        update = worker.handle(("step", 0, np.zeros((2, 4), np.float32)))
    return update


def test_evicting_an_idle_env_leaves_the_running_env_frames_intact(tmp_path):
    evicting, quiet = _worker(tmp_path, max_idle_envs=1), _worker(tmp_path, max_idle_envs=1)
    try:
        after_evictions, reference = _run_slot0(evicting, evict=True), _run_slot0(quiet, evict=False)
    finally:
        evicting.close()
        quiet.close()
    assert after_evictions.record is None and reference.record is None  # both episodes still running
    np.testing.assert_array_equal(after_evictions.obs["obs.rgb.corner"], reference.obs["obs.rgb.corner"])


def test_a_corrupted_renderer_ends_the_episode_as_an_error_not_as_data(tmp_path, monkeypatch):
    """The guard: with mujoco's own close (the bug), the running env's frames turn to garbage, and the
    episode is recorded as an error naming the corrupt frame instead of going on with noise."""
    monkeypatch.setattr(envs.rendering, "free_renderer", lambda renderer: renderer.close())
    worker = _worker(tmp_path, max_idle_envs=1)
    try:
        update = _run_slot0(worker, evict=True)
        while update.record is None:
            update = worker.handle(("step", 0, np.zeros((2, 4), np.float32)))
    finally:
        worker.close()
    assert update.record["status"] == "error"
    assert "CorruptFrameError: camera corner" in update.record["message"]


def test_a_slot_that_runs_its_task_again_reuses_the_env_it_just_released(tmp_path):
    """The pool evicts the least recently released env: after tasks A, B, A with one idle env allowed,
    the next A episode gets the A env back, whatever order the tasks first appeared in (evicting by
    first appearance instead rebuilt a Meta-World env, 0.1-0.2 s, for every episode of a worker)."""
    suite = make_suite(EnvConfig(suite="metaworld_mt10"))
    worker = RolloutWorker(WorkerSpec(suite=suite, n_obs_steps=1, n_action_steps=1, out_dir=tmp_path,
                                      record_videos=False, max_idle_envs=1))
    a, b = suite.tasks[0].name, suite.tasks[1].name
    envs_used = []
    try:
        for episode, task in enumerate([a, b, a, a, a]):
            worker.handle(("reset", 0, task, episode, episode, None))
            envs_used.append(worker.episodes[0].env)
    finally:
        worker.close()
    assert envs_used[2] is envs_used[3] is envs_used[4]
    assert envs_used[0] is not envs_used[2]  # A's first env was evicted while B ran (one idle env allowed)
    assert len({id(env) for env in envs_used}) == 3
