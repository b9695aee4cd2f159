"""train.py end to end, in-process: collect, train, evaluate, resume; and the shipped presets compose."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hydra import compose, initialize
from omegaconf import OmegaConf

from envs.config import EnvConfig
from envs.rollout import RolloutConfig
from policies.checkpoint import CheckpointError, load_policy
from policies.diffusion import DiffusionConfig
from workflows.evaluate import EvalConfig, evaluate
from workflows.train import TrainConfig, train

PRESETS = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "configs" / "experiment").glob("*.yaml"))


def compose_train(overrides: list[str]) -> TrainConfig:
    with initialize(config_path="../configs", version_base="1.3"):
        return OmegaConf.to_object(compose("train", overrides=overrides))


@pytest.mark.parametrize("preset", PRESETS)
def test_every_experiment_preset_composes_into_a_typed_config(preset):
    cfg = compose_train([f"experiment={preset}"])
    # a run is named after its preset; suite-generic presets (libero_*) put the suite in front
    assert isinstance(cfg, TrainConfig) and cfg.name in (preset, preset.replace("libero", cfg.env.suite))
    assert (cfg.dataset.n_obs_steps, cfg.dataset.horizon) == (cfg.policy.n_obs_steps, cfg.policy.horizon)
    assert cfg.dataset.cameras == cfg.env.cameras
    for joint in cfg.joint_suites.values():  # suites trained beside env: the same windows, their own cameras
        assert (joint.dataset.n_obs_steps, joint.dataset.horizon) == (cfg.policy.n_obs_steps, cfg.policy.horizon)
        assert joint.dataset.cameras == joint.env.cameras and joint.env.suite != cfg.env.suite


def test_the_cross_suite_preset_trains_libero_object_from_cameras_beside_mt10():
    cfg = compose_train(["experiment=mt10_libero_object"])
    libero = cfg.joint_suites["libero_object"]
    assert (cfg.env.suite, libero.env.suite) == ("metaworld_mt10", "libero_object")
    assert cfg.dataset.state_keys == ["state"] and libero.dataset.state_keys == ["ee_pos", "ee_ori", "gripper_states"]
    assert libero.dataset.cameras == ["agentview", "eye_in_hand"] and libero.env.image_size == 64
    assert cfg.final_eval_episodes_per_task is None and libero.final_eval_episodes_per_task == 10


def test_default_is_the_mt10_state_quickstart_with_the_diffusion_policy():
    cfg = compose_train([])
    assert cfg.name == "mt10_state" and cfg.env.suite == "metaworld_mt10"
    assert isinstance(cfg.policy, DiffusionConfig) and cfg.policy.denoiser == "unet"


@pytest.mark.parametrize("override, message", [
    ("trainer.checkpoint_every=0", "trainer.checkpoint_every must be >= 1"),
    ("trainer.log_every=0", "trainer.log_every must be >= 1"),
    ("eval_every=-5", "eval_every must be >= 0"),
    ("eval_episodes_per_task=0", "eval_episodes_per_task must be >= 1"),
])
def test_step_counts_that_cannot_work_fail_at_composition(override, message):
    with pytest.raises(Exception, match=message):
        compose_train([override])


@pytest.mark.parametrize("overrides, message", [
    (["joint_suites.libero_object.share=1.5"], r"share must be in \(0, 1\)"),
    (["joint_suites.libero_object.share=0"], r"share must be in \(0, 1\)"),
    (["joint_suites.libero_object.share=0.5", "trainer.multitask.tasks_per_batch=4"], "does not combine"),
])
def test_suite_shares_that_cannot_work_fail_at_composition(overrides, message):
    compose_train(["experiment=mt10_libero_object", "joint_suites.libero_object.share=0.5"])  # a valid share
    with pytest.raises(Exception, match=message):
        compose_train(["experiment=mt10_libero_object", *overrides])


def test_wrong_policy_names_fail_with_the_known_ones():
    with pytest.raises(Exception, match="diffusion"):
        compose_train(["policy=difusion"])


def episodes(out_dir: Path) -> list[tuple]:
    lines = (out_dir / "episodes.jsonl").read_text().splitlines()[1:]
    return sorted((r["episode"], r["success"], r["length"], r["reward"]) for r in map(json.loads, lines))


def test_collect_train_evaluate_and_resume_in_process(tmp_path):
    overrides = [
        "env=metaworld_mt1", "env.task=reach-v3", f"dataset.path={tmp_path / 'demos'}", "collect_episodes_per_task=3",
        f"out_dir={tmp_path / 'run'}", "progress=false", "policy.unet.down_dims=[16,32]",
        "policy.obs_encoder.state_hidden_dim=32", "policy.conditioning.text=false", "trainer.num_steps=6",
        "trainer.batch_size=8", "trainer.checkpoint_every=4", "trainer.log_every=2", "eval_every=3",
        "eval_episodes_per_task=1", "final_eval_episodes_per_task=2", "rollout.num_workers=1",
        "rollout.envs_per_worker=2", "rollout.videos_per_task=1", "rollout.video_size=64", "env.max_episode_steps=60",
    ]
    cfg = compose_train(overrides)
    result = train(cfg)
    assert result["step"] == 6
    assert len(list((tmp_path / "demos").glob("*.hdf5"))) == 1  # the experts' demonstrations came first
    final = json.loads((tmp_path / "run" / "final_eval" / "results.json").read_text())
    assert final["tasks"]["reach-v3"]["episodes"] == 2 and final["tasks"]["reach-v3"]["errors"] == 0
    assert len(list((tmp_path / "run" / "final_eval" / "videos").glob("reach-v3_ep000_*.mp4"))) == 1
    # evaluated at step 3, between checkpoints: the weights in memory, named by their own hash
    periodic = json.loads((tmp_path / "run" / "eval" / "step_0000003" / "results.json").read_text())
    assert periodic["tasks"]["reach-v3"]["episodes"] == 1
    assert periodic["metadata"]["identity"]["policy"]["step"] == 3
    checkpoint_hash = {step: hashlib.sha256((tmp_path / "run" / "checkpoints" / f"step_{step:07d}" /
                                             "model.safetensors").read_bytes()).hexdigest() for step in (4, 6)}
    assert periodic["metadata"]["identity"]["policy"]["sha256"] not in checkpoint_hash.values()
    assert final["metadata"]["identity"]["policy"]["sha256"] == checkpoint_hash[6]
    policy, record = load_policy(tmp_path / "run" / "checkpoints" / "last")
    assert record["metadata"]["step"] == 6 and record["metadata"]["suite"] == "metaworld_mt1/reach-v3"
    assert [t.name for t in policy.spec.tasks] == ["reach-v3"]

    # the same command again resumes at the end: no step is trained twice, the final results are reused
    assert train(cfg)["step"] == 6

    # another policy in the same out_dir is refused, and the run's config.yaml stays the run's own
    config = (tmp_path / "run" / "config.yaml").read_text()
    with pytest.raises(CheckpointError, match="different policy"):
        train(compose_train(overrides + ["policy.unet.down_dims=[16,48]"]))
    assert (tmp_path / "run" / "config.yaml").read_text() == config

    # eval.py runs the checkpoint like any other policy, and with other workers it gives the final
    # evaluation's episodes exactly (same weights, seed and protocol)
    eval_cfg = EvalConfig(env=EnvConfig(suite="metaworld_mt1", task="reach-v3", max_episode_steps=60),
                          checkpoint=str(tmp_path / "run" / "checkpoints" / "last"), episodes_per_task=2,
                          rollout=RolloutConfig(num_workers=2, envs_per_worker=1, videos_per_task=0),
                          out_dir=str(tmp_path / "eval"), progress=False)
    assert evaluate(eval_cfg)["suite"]["episodes"] == 2
    assert episodes(tmp_path / "eval") == episodes(tmp_path / "run" / "final_eval")

    # ... and refuses a suite whose envs do not fit the policy
    with pytest.raises(ValueError, match="camera 'corner'|cannot run"):
        evaluate(EvalConfig(env=EnvConfig(suite="metaworld_mt1", task="push-v3"), out_dir=str(tmp_path / "bad"),
                            checkpoint=str(tmp_path / "run" / "checkpoints" / "last"), progress=False))


def test_tasks_without_demonstrations_are_recorded_with_the_weights_and_in_the_results(tmp_path):
    """MT10 with demonstrations of reach-v3 only (as when an expert never solves the other tasks): the run
    trains, and the checkpoint and every results.json of it name the nine tasks it never saw."""
    from tests.datasets.conftest import write_task_file

    demos = tmp_path / "demos"
    demos.mkdir()
    write_task_file(demos / "reach-v3.hdf5", "reach-v3", [40, 40], state_dim=39, action_dim=4)
    cfg = compose_train([
        f"dataset.path={demos}", "collect_missing=false", "final_eval=false", f"out_dir={tmp_path / 'run'}",
        "progress=false", "policy.unet.down_dims=[16,32]", "policy.obs_encoder.state_hidden_dim=32",
        "policy.conditioning.text=false", "trainer.num_steps=2", "trainer.batch_size=4", "trainer.checkpoint_every=2",
    ])
    train(cfg)
    _, record = load_policy(tmp_path / "run" / "checkpoints" / "last")
    never_seen = record["metadata"]["tasks_without_demonstrations"]["metaworld_mt10"]
    assert len(never_seen) == 9 and "reach-v3" not in never_seen and "push-v3" in never_seen
    results = evaluate(EvalConfig(env=EnvConfig(suite="metaworld_mt10", max_episode_steps=8), tasks=["push-v3"],
                                  checkpoint=str(tmp_path / "run" / "checkpoints" / "last"), episodes_per_task=1,
                                  rollout=RolloutConfig(num_workers=1, envs_per_worker=1, videos_per_task=0),
                                  out_dir=str(tmp_path / "eval"), progress=False))
    policy = results["metadata"]["identity"]["policy"]
    assert policy["tasks_without_demonstrations"] == {"metaworld_mt10": never_seen}
