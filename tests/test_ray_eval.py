"""Evaluation and collection with rollout.backend=ray on one local Ray cluster (started once for the module):
the same episodes as the local engine, retried episodes of dead actors, hung episodes, Ctrl-C and resume.
The default run keeps two tests (~25 s with the cluster); the rest are marked slow."""

from __future__ import annotations

import json
import os
import secrets
import signal
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from envs.config import EnvConfig, FaultConfig
from envs.rollout import Backend, RayConfig, RolloutConfig
from tests.test_eval import _journal, _random_diffusion_checkpoint
from workflows.collect import CollectConfig, collect
from workflows.evaluate import EvalConfig, evaluate

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    """A local cluster with token authentication (Ray 2.60's default) from a token in the environment,
    so nothing is written to ~/.ray and nothing needs a network beyond this machine."""
    from envs.ray_cluster import connect

    saved = {name: os.environ.get(name) for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_MODE")}
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(16)
    connect(RayConfig(), cpus_needed=2)
    yield
    ray.shutdown()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _rollout(backend: Backend, workers: int = 2, slots: int = 2, **ray_fields) -> RolloutConfig:
    return RolloutConfig(num_workers=workers, envs_per_worker=slots, videos_per_task=0, backend=backend,
                         ray=RayConfig(num_actors=workers, **ray_fields))


def _config(out_dir: Path, backend: Backend, episodes: int = 4, fault: FaultConfig | None = None,
            **rollout) -> EvalConfig:
    env = EnvConfig(suite="metaworld_mt1", task="reach-v3", fault=fault or FaultConfig())
    return EvalConfig(env=env, episodes_per_task=episodes, out_dir=str(out_dir), progress=False,
                      rollout=_rollout(backend, **rollout))


def _episodes(out_dir: Path) -> list[tuple]:
    return sorted((r["episode"], r["status"], r["success"], r["length"], r["reward"]) for r in _journal(out_dir))


def test_ray_writes_the_local_engines_records_and_videos_even_when_an_actor_dies(tmp_path):
    """The experts on 2 actors x 1 slot (the local engine: 2 workers x 2 slots), with episode 1's actor killed at
    step 5 (SIGSEGV in its env): Ray
    restarts the actor and the driver runs the episode again (the fault fires once). The journal holds the
    local engine's records, one per episode, the retry counted; the video is the local engine's file."""
    runs = {}
    for backend, fault in ((Backend.local, FaultConfig()), (Backend.ray, FaultConfig("segfault", episode=1, step=5))):
        cfg = _config(tmp_path / backend, backend, episodes=5, fault=fault, slots=2 if backend == "local" else 1)
        cfg.rollout.videos_per_task, cfg.rollout.video_size = 2, 64
        results = evaluate(cfg)
        assert results["metadata"]["complete"] is True and results["suite"]["errors"] == 0
        runs[backend] = {r["episode"]: r for r in _journal(tmp_path / backend)}
    assert _episodes(tmp_path / "ray") == _episodes(tmp_path / "local")
    assert len(_journal(tmp_path / "ray")) == 5  # nothing counted twice
    assert len({r["reward"] for r in runs["ray"].values()}) == 5  # five different episodes
    assert [r["retries"] for _, r in sorted(runs["ray"].items())] == [0, 1, 0, 0, 0]
    assert results["tasks"]["reach-v3"]["retries"] == 1
    assert all(sorted(runs["ray"][e]) == sorted(runs["local"][e]) for e in runs["local"])  # same fields
    for episode in (0, 1):  # written here from the bytes the actor sent: the local engine's very file
        video = runs["ray"][episode]["video"]
        assert video == runs["local"][episode]["video"]
        assert (tmp_path / "ray" / video).read_bytes() == (tmp_path / "local" / video).read_bytes()
    assert not list((tmp_path / "ray" / "videos").glob(".*"))  # no temporaries left


def test_actors_the_cluster_cannot_place_stop_the_run_saying_why(tmp_path):
    cfg = _config(tmp_path, Backend.ray, episodes=2, num_cpus_per_actor=64, actor_start_timeout_s=2)
    with pytest.raises(RuntimeError, match=r"no Ray actor could run episodes for 2 s .* 64 CPU"):
        evaluate(cfg)
    assert json.loads((tmp_path / "results.json").read_text())["metadata"]["complete"] is False


@pytest.mark.slow
def test_a_learned_policy_acts_bit_for_bit_as_in_the_local_engine(tmp_path):
    checkpoint = _random_diffusion_checkpoint(tmp_path / "run" / "checkpoints" / "last")
    journals = []
    for name, backend, workers, slots in (("local", Backend.local, 1, 1), ("ray", Backend.ray, 2, 3)):
        cfg = EvalConfig(env=EnvConfig(suite="metaworld_mt1", task="reach-v3", max_episode_steps=40),
                         checkpoint=str(checkpoint), episodes_per_task=6, out_dir=str(tmp_path / name),
                         rollout=_rollout(backend, workers, slots), progress=False)
        evaluate(cfg)
        journals.append(_episodes(tmp_path / name))
    assert journals[0] == journals[1]
    assert len({reward for *_, reward in journals[0]}) == 6


@pytest.mark.slow
def test_an_episode_whose_actor_keeps_dying_becomes_an_error_after_its_retries(tmp_path):
    cfg = _config(tmp_path, Backend.ray, episodes=2, slots=1, max_episode_retries=1,
                  fault=FaultConfig(kind="segfault", episode=0, step=3, only_once=False))
    task = evaluate(cfg)["tasks"]["reach-v3"]
    assert (task["episodes"], task["errors"]) == (1, 1)
    record = next(r for r in _journal(tmp_path) if r["episode"] == 0)
    assert record["status"] == "error" and record["retries"] == 1
    assert "actor died 2 times" in record["message"]


@pytest.mark.slow
def test_a_hung_episode_times_out_as_an_error_and_the_run_completes(tmp_path):
    cfg = _config(tmp_path, Backend.ray, episode_timeout_s=4.0, fault=FaultConfig(kind="hang", episode=2, step=3))
    task = evaluate(cfg)["tasks"]["reach-v3"]
    assert (task["episodes"], task["successes"], task["errors"]) == (3, 3, 1)
    record = next(r for r in _journal(tmp_path) if r["episode"] == 2)
    assert record["status"] == "error" and "hung" in record["message"]
    # Resume retries the error episode only (the hang fired once) and completes the run.
    task = evaluate(cfg)["tasks"]["reach-v3"]
    assert (task["episodes"], task["errors"]) == (4, 0) and len(_journal(tmp_path)) == 5


@pytest.mark.slow
def test_an_exception_in_an_env_is_an_error_record_as_with_the_local_engine(tmp_path):
    cfg = _config(tmp_path, Backend.ray, episodes=3, fault=FaultConfig(kind="exception", episode=1, step=5))
    task = evaluate(cfg)["tasks"]["reach-v3"]
    assert (task["episodes"], task["errors"], task["retries"]) == (2, 1, 0)
    assert "injected fault" in task["error_messages"][0]


def test_ctrl_c_keeps_every_finished_episode_and_the_run_resumes(tmp_path):
    """SIGINT once three episodes are in the journal: the journal stays whole, results.json says incomplete,
    and re-running runs exactly the missing episodes."""
    episodes = 8
    cfg = _config(tmp_path, Backend.ray, episodes=episodes, slots=1)
    cfg.env.terminate_on_success, cfg.env.max_episode_steps = False, 100  # episodes long enough to interrupt
    journal = tmp_path / "episodes.jsonl"

    def interrupt() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if journal.exists() and len(journal.read_text().splitlines()) >= 4:  # header + 3 episodes
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.02)

    # Ctrl-C in a terminal: Python's own SIGINT handler. A process started in the background of a
    # non-interactive shell (as CI may start the tests) inherits SIGINT ignored, and the signal would be lost.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    threading.Thread(target=interrupt, daemon=True).start()
    try:
        with pytest.raises(KeyboardInterrupt):
            evaluate(cfg)
    finally:
        signal.signal(signal.SIGINT, previous)
    finished = _journal(tmp_path)
    assert 3 <= len(finished) < episodes
    assert json.loads((tmp_path / "results.json").read_text())["metadata"]["complete"] is False
    results = evaluate(cfg)
    assert sorted(r["episode"] for r in _journal(tmp_path)) == list(range(episodes))  # each exactly once
    assert results["metadata"]["complete"] is True and results["tasks"]["reach-v3"]["episodes"] == episodes


@pytest.mark.slow
def test_collection_on_ray_writes_the_local_engines_demonstrations(tmp_path):
    files = {}
    for backend in (Backend.local, Backend.ray):
        cfg = CollectConfig(env=EnvConfig(suite="metaworld_mt1", task="reach-v3", goal_set="random"),
                            rollout=_rollout(backend), episodes_per_task=3, out_dir=str(tmp_path / backend),
                            progress=False)
        files[backend] = collect(cfg)["reach-v3"]
    with h5py.File(files["local"], "r") as local, h5py.File(files["ray"], "r") as remote:
        assert sorted(local["data"]) == sorted(remote["data"]) == ["demo_0", "demo_1", "demo_2"]
        for demo in local["data"]:
            for key in ("actions", "obs/state", "rewards", "dones"):
                np.testing.assert_array_equal(local["data"][demo][key][()], remote["data"][demo][key][()])


@pytest.mark.slow
def test_evaluations_during_training_run_on_ray_and_match_the_local_engine(tmp_path):
    """train.py with rollout.backend=ray: the weights in training are pickled to the actors; the final evaluation
    gives the episodes eval.py gives for the saved checkpoint with the local engine."""
    from tests.test_train import compose_train, episodes
    from workflows.train import train

    overrides = ["env=metaworld_mt1", "env.task=reach-v3", f"dataset.path={tmp_path / 'demos'}",
                 "collect_episodes_per_task=2", f"out_dir={tmp_path / 'run'}", "progress=false",
                 "policy.unet.down_dims=[16,32]", "policy.obs_encoder.state_hidden_dim=32",
                 "policy.conditioning.text=false", "trainer.num_steps=4", "trainer.batch_size=8",
                 "trainer.checkpoint_every=4", "eval_every=2", "eval_episodes_per_task=1",
                 "final_eval_episodes_per_task=3", "rollout.backend=ray", "rollout.ray.num_actors=2",
                 "rollout.envs_per_worker=2", "rollout.videos_per_task=0", "env.max_episode_steps=40"]
    result = train(compose_train(overrides))
    assert result["step"] == 4 and result["final_eval"]["suite"]["episodes"] == 3
    assert json.loads((tmp_path / "run" / "eval" / "step_0000002" / "results.json").read_text())["suite"]["episodes"] == 1
    cfg = EvalConfig(env=EnvConfig(suite="metaworld_mt1", task="reach-v3", max_episode_steps=40),
                     checkpoint=str(tmp_path / "run" / "checkpoints" / "last"), episodes_per_task=3,
                     rollout=_rollout(Backend.local, 1, 1), out_dir=str(tmp_path / "local"), progress=False)
    evaluate(cfg)
    assert episodes(tmp_path / "local") == episodes(tmp_path / "run" / "final_eval")
