"""The Ray backend's parts that need no cluster: the actor's episode runner and batcher (run in-process),
the engine registry, authentication choices and the GL renderer check."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from common.schema import EPISODE_SEED, EPISODE_STEP, TASK_INDEX
from envs.config import EnvConfig
from envs.ray_actor import EpisodeJob, EpisodeRunner
from envs.registry import make_suite
from envs.rollout import ENGINES, Backend, EpisodeRequest, RayAuth, RayConfig, RolloutConfig, episode_seed, make_engine
from envs.worker import WorkerSpec


def _run_in_process(runner: EpisodeRunner, policy, jobs: list[EpisodeJob]) -> list:
    """Run `jobs` concurrently on one runner, as a Ray actor's event loop would."""
    async def main():
        return await asyncio.gather(*(runner.run_episode(job, [policy]) for job in jobs))

    try:
        return asyncio.run(main())
    finally:
        runner.close()


class CountingPolicy:
    """Wraps a ChunkPolicy and records the rows of every call."""

    def __init__(self, policy):
        self.policy, self.calls = policy, []
        self.n_obs_steps, self.n_action_steps = policy.n_obs_steps, policy.n_action_steps

    def predict_action_chunk(self, batch):
        self.calls.append((batch[EPISODE_SEED].tolist(), batch[EPISODE_STEP].tolist()))
        return self.policy.predict_action_chunk(batch)


def test_concurrent_episodes_share_one_policy_call_per_step_and_match_one_at_a_time(tmp_path):
    suite = make_suite(EnvConfig(suite="metaworld_mt1", task="reach-v3"))
    spec = WorkerSpec(suite=suite, n_obs_steps=1, n_action_steps=1, out_dir=tmp_path, record_videos=False)
    task = suite.tasks[0]
    jobs = [EpisodeJob(task, e, episode_seed(0, EpisodeRequest(task, e))) for e in range(3)]
    policy = CountingPolicy(suite.make_expert())
    together = _run_in_process(EpisodeRunner(spec), policy, jobs)
    lengths = sorted(result.record["length"] for result in together)
    # One call per env step for every running episode (rows drop out as episodes end), never one per episode.
    assert [steps for _, steps in policy.calls] == [[k] * sum(length > k for length in lengths)
                                                    for k in range(lengths[-1])]
    alone = [_run_in_process(EpisodeRunner(spec), suite.make_expert(), [job])[0] for job in jobs]
    assert [r.record for r in together] == [r.record for r in alone]
    assert [r.steps for r in together] == [r.record["length"] for r in together]


def test_the_runner_gives_the_local_engines_episodes_for_a_learned_policy(tmp_path):
    """The actor's batches differ from the local engine's (other rows, other sizes), yet a learned policy acts
    bit for bit the same: same lengths and summed rewards. This is what a Ray actor runs, minus the transport."""
    from policies.checkpoint import load_policy
    from tests.test_eval import _journal, _random_diffusion_checkpoint
    from workflows.evaluate import EvalConfig, evaluate, learned_policy

    checkpoint = _random_diffusion_checkpoint(tmp_path / "run" / "checkpoints" / "last")
    env = EnvConfig(suite="metaworld_mt1", task="reach-v3", max_episode_steps=30)
    rollout = RolloutConfig(num_workers=1, envs_per_worker=1, videos_per_task=0)
    evaluate(EvalConfig(env=env, checkpoint=str(checkpoint), episodes_per_task=4, rollout=rollout,
                        out_dir=str(tmp_path / "local"), progress=False))
    local = sorted((r["episode"], r["length"], r["reward"]) for r in _journal(tmp_path / "local"))

    suite = make_suite(env)
    actor = learned_policy(load_policy(checkpoint)[0], suite, {}, "x", "cpu", rollout).policy
    spec = WorkerSpec(suite=suite, n_obs_steps=actor.n_obs_steps, n_action_steps=actor.n_action_steps,
                      out_dir=tmp_path / "ray", record_videos=False)
    jobs = [EpisodeJob(suite.tasks[0], e, episode_seed(0, EpisodeRequest(suite.tasks[0], e))) for e in range(4)]
    threads = torch.get_num_threads()
    try:
        results = _run_in_process(EpisodeRunner(spec, policy_threads=rollout.policy_threads), actor, jobs)
    finally:
        torch.set_num_threads(threads)
    assert sorted((r.record["episode"], r.record["length"], r.record["reward"]) for r in results) == local
    assert len({reward for *_, reward in local}) == 4


def test_an_expert_in_the_spec_runs_whole_episodes_as_the_batched_runner_does(tmp_path):
    """A policy that runs in the workers (the experts: WorkerSpec.policy, as the Ray engine sends them) runs each
    episode with the worker's "run" command, no box needed, and gives the batched path's records."""
    suite = make_suite(EnvConfig(suite="metaworld_mt1", task="reach-v3"))
    spec = WorkerSpec(suite=suite, n_obs_steps=1, n_action_steps=1, out_dir=tmp_path, record_videos=False,
                      policy=suite.make_expert())
    task = suite.tasks[0]
    jobs = [EpisodeJob(task, e, episode_seed(0, EpisodeRequest(task, e))) for e in range(3)]
    whole = _run_in_process(EpisodeRunner(spec), None, jobs)  # None: a batched call would fail
    batched = _run_in_process(EpisodeRunner(dataclasses.replace(spec, policy=None)),
                              CountingPolicy(suite.make_expert()), jobs)
    assert [r.record for r in whole] == [r.record for r in batched]
    assert [r.steps for r in whole] == [r.record["length"] for r in whole] == [r.steps for r in batched]
    assert len({r.record["reward"] for r in whole}) == 3


def test_a_policy_error_fails_every_waiting_episode_with_it(tmp_path):
    suite = make_suite(EnvConfig(suite="metaworld_mt1", task="reach-v3"))
    spec = WorkerSpec(suite=suite, n_obs_steps=1, n_action_steps=1, out_dir=tmp_path, record_videos=False)

    class WrongShape:
        n_obs_steps = n_action_steps = 1

        def predict_action_chunk(self, batch):
            return np.zeros((len(batch[TASK_INDEX]), 4), np.float32)  # (B, Da): the chunk axis is missing

    jobs = [EpisodeJob(suite.tasks[0], e, e) for e in range(2)]
    with pytest.raises(ValueError, match=r"expected \(B=2, T>=1, Da\)"):
        _run_in_process(EpisodeRunner(spec), WrongShape(), jobs)


def test_every_backend_is_registered_and_the_factory_picks_it(tmp_path):
    from envs.ray_engine import RayRolloutEngine

    assert ENGINES.names() == sorted(b.value for b in Backend)
    suite = make_suite(EnvConfig(suite="metaworld_mt1", task="reach-v3"))
    engine = make_engine(suite, RolloutConfig(backend=Backend.ray), suite.make_expert(), tmp_path)
    assert isinstance(engine, RayRolloutEngine) and engine.spec.max_idle_envs == 8
    assert engine.spec.policy is engine.policy  # the expert runs in the actors, as in the local workers
    with pytest.raises(KeyError, match="known: local, ray"):
        ENGINES.get("slurm")


@pytest.mark.parametrize("auth, address, environment, token_file, expected", [
    (RayAuth.auto, None, {}, False, None),  # a new local cluster: Ray's own default (token)
    (RayAuth.auto, "127.0.0.1:6379", {}, True, "token"),  # `ray start` turned tokens on: send ours
    (RayAuth.auto, "127.0.0.1:6379", {}, False, None),  # no token to send
    (RayAuth.auto, "auto", {"RAY_AUTH_TOKEN": "0" * 32}, False, "token"),
    (RayAuth.auto, "127.0.0.1:6379", {"RAY_AUTH_MODE": "disabled"}, True, None),  # the user's choice stays
    (RayAuth.disabled, "127.0.0.1:6379", {}, True, "disabled"),
    (RayAuth.token, None, {}, False, "token"),
])
def test_authentication_follows_the_cluster(monkeypatch, tmp_path, auth, address, environment, token_file,
                                            expected):
    from envs.ray_cluster import auth_mode

    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    token = tmp_path / "auth_token"
    if token_file:
        token.write_text("f" * 32)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token))
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert auth_mode(auth, address) == expected


def test_the_gl_renderer_is_read_and_a_software_one_refused_for_a_gpu():
    from envs.gl_device import check_gpu_renderer, gl_renderer

    renderer = gl_renderer()  # OSMesa here (tests/conftest.py)
    assert renderer and "nvidia" not in renderer.lower()
    with pytest.raises(RuntimeError, match="given GPU 3 but MuJoCo renders with"):
        check_gpu_renderer(renderer, 3)
    check_gpu_renderer("NVIDIA H100 80GB HBM3/PCIe/SSE2", 3)


def test_ray_config_rejects_impossible_values():
    with pytest.raises(ValueError, match="num_actors >= 1"):
        RayConfig(num_actors=0)
    with pytest.raises(ValueError, match="timeouts must be > 0"):
        RayConfig(episode_timeout_s=0)


def test_scratch_folders_are_per_run_and_stable():
    from envs.ray_actor import scratch_folder

    assert scratch_folder(Path("a/run")) == scratch_folder(Path("a/run").resolve())
    assert scratch_folder(Path("a/run")) != scratch_folder(Path("b/run"))
