"""The engine's shared-memory transport and in-worker policies: the same episodes as stepping the env by
hand, no segment left behind by a dead worker, and a wrong chunk refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from envs.config import EnvConfig, FaultConfig
from envs.registry import make_suite
from envs.rollout import EpisodeRequest, RolloutConfig, RolloutEngine, episode_seed
from envs.worker import RolloutWorker, WorkerSpec, policy_batch
from tests.test_eval import _random_diffusion_checkpoint

SHM = Path("/dev/shm")


class InTheEngine:
    """A policy that acts in the engine process, whatever the wrapped one would do (to test the transport)."""

    def __init__(self, policy):
        self.policy, self.n_obs_steps, self.n_action_steps = policy, policy.n_obs_steps, policy.n_action_steps

    def predict_action_chunk(self, batch):
        return self.policy.predict_action_chunk(batch)


def by_hand(suite, policy, request: EpisodeRequest, seed: int) -> tuple:
    """One episode stepped in this process, the observation never leaving it: the reference."""
    worker = RolloutWorker(WorkerSpec(suite=suite, n_obs_steps=policy.n_obs_steps,
                                      n_action_steps=policy.n_action_steps, out_dir=Path("."), record_videos=False))
    try:
        obs, steps = worker._reset(0, request.task.name, request.episode, seed, None), 0
        while True:
            batch = policy_batch([obs], [request.task], [seed], [steps])
            chunk = np.asarray(policy.predict_action_chunk(batch))[0, :policy.n_action_steps]
            obs, done, record, _ = worker._step(0, chunk)
            steps += done
            if record is not None:
                return record["success"], record["length"], record["reward"]
    finally:
        worker.close()


def engine_records(suite, policy, requests, workers: int = 2, slots: int = 3, seed: int = 0) -> dict:
    records = {}
    config = RolloutConfig(num_workers=workers, envs_per_worker=slots, videos_per_task=0, seed=seed)
    RolloutEngine(suite, config, policy, Path("/tmp"), progress=False).run(
        requests, on_record=lambda r: records.__setitem__((r.task, r.episode), (r.success, r.length, r.reward)))
    return records


def learned_policy(tmp_path, suite):
    from policies.acting import PolicyActor
    from policies.checkpoint import load_policy

    policy, _ = load_policy(_random_diffusion_checkpoint(tmp_path / "ckpt"))
    return PolicyActor(policy, suite.tasks, device="cpu")


@pytest.mark.parametrize("which", ["experts in the workers", "experts in the engine", "learned policy"])
def test_the_engine_gives_the_episodes_stepping_by_hand_gives(tmp_path, which):
    suite = make_suite(EnvConfig(suite="metaworld_mt1", task="reach-v3", max_episode_steps=60))
    policy = learned_policy(tmp_path, suite) if which == "learned policy" else suite.make_expert()
    if which == "experts in the engine":
        policy = InTheEngine(policy)
    requests = [EpisodeRequest(suite.tasks[0], e) for e in range(5)]
    through_engine = engine_records(suite, policy, requests)
    for request in requests:
        reference = by_hand(suite, policy, request, episode_seed(0, request))
        assert through_engine[request.task.name, request.episode] == reference, request


def test_a_worker_that_dies_leaves_no_shared_memory_and_the_run_completes(tmp_path):
    before = {p.name for p in SHM.iterdir()}
    suite = make_suite(EnvConfig(suite="metaworld_mt1", task="reach-v3", max_episode_steps=60,
                                 fault=FaultConfig(kind="segfault", episode=1, step=5)))
    policy = InTheEngine(suite.make_expert())  # observations through shared memory
    requests = [EpisodeRequest(suite.tasks[0], e) for e in range(4)]
    statuses = {}
    config = RolloutConfig(num_workers=1, envs_per_worker=2, videos_per_task=0)
    RolloutEngine(suite, config, policy, tmp_path, progress=False).run(
        requests, on_record=lambda r: statuses.__setitem__(r.episode, r.status))
    assert sorted(statuses) == [0, 1, 2, 3] and statuses[1] == "error"
    assert sum(s == "ok" for s in statuses.values()) >= 2
    leaked = {p.name for p in SHM.iterdir()} - before
    assert not leaked, leaked


class WrongWidth(InTheEngine):
    def predict_action_chunk(self, batch):
        return np.zeros((len(batch["task.index"]), 1, 3), np.float32)  # Meta-World takes 4 numbers


class TooShort(InTheEngine):
    n_action_steps = 4

    def __init__(self, policy):
        super().__init__(policy)
        self.n_action_steps = 4

    def predict_action_chunk(self, batch):
        return np.zeros((len(batch["task.index"]), 2, 4), np.float32)


@pytest.mark.parametrize("policy_class, message", [
    (WrongWidth, r"executed actions have shape \(1, 3\); the env takes \(1, 4\)"),
    (TooShort, r"policy returned actions of shape \(\d+, 2, 4\); expected \(B=\d+, T>=4, Da\)"),
])
def test_a_chunk_of_the_wrong_shape_is_refused_by_name(tmp_path, policy_class, message):
    suite = make_suite(EnvConfig(suite="metaworld_mt1", task="reach-v3", max_episode_steps=20))
    engine = RolloutEngine(suite, RolloutConfig(num_workers=1, envs_per_worker=1, videos_per_task=0),
                           policy_class(suite.make_expert()), tmp_path, progress=False)
    with pytest.raises(ValueError, match=message):
        engine.run([EpisodeRequest(suite.tasks[0], 0)], on_record=lambda r: None)
