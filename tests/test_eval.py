"""End-to-end evaluation: parallel workers, results, videos, crashes and resume."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common.atomic import DiskFullError
from envs.config import EnvConfig, FaultConfig
from envs.rollout import RolloutConfig
from envs.video import read_mp4
from policies.config import ConditioningConfig
from tests.envs.test_video import FAILING_FFMPEG
from workflows.evaluate import ActingConfig, EvalConfig, evaluate

ROOT = Path(__file__).resolve().parents[1]


def _config(tmp_path: Path, task: str = "reach-v3", episodes: int = 3, **env) -> EvalConfig:
    return EvalConfig(env=EnvConfig(suite="metaworld_mt1", task=task, **env), episodes_per_task=episodes,
                      rollout=RolloutConfig(num_workers=2, envs_per_worker=2, videos_per_task=0),
                      out_dir=str(tmp_path), progress=False)


def _journal(out_dir: Path) -> list[dict]:
    lines = (out_dir / "episodes.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines[1:]]


def test_expert_eval_on_mt10_writes_results_table_and_videos(tmp_path):
    cfg = EvalConfig(env=EnvConfig(suite="metaworld_mt10"), episodes_per_task=2, out_dir=str(tmp_path),
                     rollout=RolloutConfig(num_workers=2, envs_per_worker=3, videos_per_task=1, video_size=96),
                     progress=False)
    results = evaluate(cfg)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["suite"] == results["suite"] and len(on_disk["tasks"]) == 10
    for task in on_disk["tasks"].values():
        assert task["episodes"] == 2 and task["errors"] == 0
        low, high = task["ci95"]
        assert 0 <= low <= task["success_rate"] <= high <= 1
    assert on_disk["suite"]["mean_success"] >= 0.8  # the scripted experts solve MT10
    meta = on_disk["metadata"]
    assert meta["protocol"]["episodes_per_task"] == 2 and meta["packages"]["metaworld"] == "3.1.1"
    assert meta["complete"] is True
    assert "| push-v3 |" in (tmp_path / "results.md").read_text().replace("  ", " ")
    videos = sorted((tmp_path / "videos").glob("*.mp4"))
    assert len(videos) == 10  # first episode of each task
    assert all("_ep000_" in v.name for v in videos)
    first_episodes = {r["task"]: r for r in _journal(tmp_path) if r["episode"] == 0}
    for video in videos:
        record = first_episodes[video.name.split("_ep")[0]]
        assert video.name.endswith("_success.mp4" if record["success"] else "_failure.mp4")
        assert tmp_path / record["video"] == video
    page = (tmp_path / "results.html").read_text()  # the same run as a page, every video embedded
    assert all(f'src="videos/{video.name}"' in page for video in videos) and page.count('class="bar"') == 10
    frames = read_mp4(videos[0])
    assert frames.shape[1:] == (96, 96, 3)
    assert len(frames) == first_episodes[videos[0].name.split("_ep")[0]]["length"] + 1  # reset frame + one per step


def test_named_tasks_run_alone_and_their_results_say_so(tmp_path):
    cfg = EvalConfig(env=EnvConfig(suite="metaworld_mt10"), episodes_per_task=2, tasks=["window-close-v3", "reach-v3"],
                     rollout=RolloutConfig(num_workers=2, envs_per_worker=1, videos_per_task=0),
                     out_dir=str(tmp_path / "two"), progress=False)
    results = evaluate(cfg)
    assert list(results["tasks"]) == ["reach-v3", "window-close-v3"]  # the suite's order
    assert results["suite"]["episodes"] == 4
    assert sorted({r["task"] for r in _journal(tmp_path / "two")}) == ["reach-v3", "window-close-v3"]
    assert results["metadata"]["protocol"]["evaluated_tasks"] == ["reach-v3", "window-close-v3"]
    with pytest.raises(ValueError, match="out_dir"):  # the whole suite is another run
        evaluate(dataclasses.replace(cfg, tasks=None))
    with pytest.raises(ValueError, match=r"\['reach-v2'\] are not tasks of metaworld_mt10; known: .*button-press"):
        evaluate(dataclasses.replace(cfg, tasks=["reach-v2"], out_dir=str(tmp_path / "wrong")))


# An exception costs only its own slot's episode; a dead process costs every episode it was
# running, so the segfault case runs one env per worker.
@pytest.mark.parametrize("kind, envs_per_worker", [("exception", 2), ("segfault", 1)])
def test_a_crashing_worker_costs_one_episode_not_the_run(tmp_path, kind, envs_per_worker):
    cfg = _config(tmp_path, episodes=4, fault=FaultConfig(kind=kind, episode=1, step=5))
    cfg.rollout.envs_per_worker = envs_per_worker
    results = evaluate(cfg)
    task = results["tasks"]["reach-v3"]
    assert task["errors"] == 1 and task["episodes"] == 3  # the three other episodes ran to the end
    assert task["successes"] == 3
    records = {r["episode"]: r for r in _journal(tmp_path)}
    assert records[1]["status"] == "error"
    expected = "injected fault" if kind == "exception" else "died"
    assert expected in records[1]["message"]
    # Resume: the error episode is retried (the fault fires only once) and nothing else re-runs.
    results = evaluate(cfg)
    assert results["tasks"]["reach-v3"]["errors"] == 0 and results["tasks"]["reach-v3"]["episodes"] == 4
    assert len(_journal(tmp_path)) == 5


def test_resume_refuses_a_different_configuration_and_keeps_the_run_config(tmp_path):
    evaluate(_config(tmp_path, episodes=1))
    config = (tmp_path / "config.yaml").read_text()
    with pytest.raises(ValueError, match="out_dir"):
        evaluate(_config(tmp_path, task="push-v3", episodes=1))
    assert (tmp_path / "config.yaml").read_text() == config  # still the run's own, not the refused one


def test_an_out_dir_that_is_a_file_is_named_as_such(tmp_path):
    (tmp_path / "results").write_text("not a folder")
    with pytest.raises(NotADirectoryError, match=f"out_dir={tmp_path / 'results' / 'run'} cannot be a folder: "
                                                 f"{tmp_path / 'results'} is a file"):
        evaluate(_config(tmp_path / "results" / "run", episodes=1))


def test_a_full_disk_stops_the_run_cleanly_with_a_consistent_journal(tmp_path, monkeypatch, caplog):
    """The journal's third record meets a full disk: the run stops saying so, no worker is blamed, and
    the journal keeps exactly the two complete records, so re-running resumes from there."""
    real_fsync, calls = os.fsync, []

    def fsync(descriptor: int) -> None:
        if os.path.basename(os.readlink(f"/proc/self/fd/{descriptor}")) == "episodes.jsonl":
            calls.append(descriptor)
            if len(calls) >= 3:
                raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(DiskFullError, match=f"disk full: cannot write {tmp_path / 'episodes.jsonl'}"):
        evaluate(_config(tmp_path, episodes=4))
    assert len(_journal(tmp_path)) == 2  # every line whole: the third record was cut back, not left half
    assert "worker" not in caplog.text  # no worker was declared dead or replaced
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert evaluate(_config(tmp_path, episodes=4))["tasks"]["reach-v3"]["episodes"] == 4
    assert len(_journal(tmp_path)) == 4  # two resumed, two new: nothing counted twice


def test_an_episode_whose_video_cannot_be_written_is_an_error_and_runs_again(tmp_path, monkeypatch):
    fake = tmp_path / "ffmpeg"
    fake.write_text(FAILING_FFMPEG)
    fake.chmod(0o755)
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(fake))  # inherited by the worker processes
    cfg = _config(tmp_path / "run", episodes=2)
    cfg.rollout.videos_per_task = 1
    first = evaluate(cfg)["tasks"]["reach-v3"]
    assert (first["episodes"], first["errors"]) == (1, 1)
    assert "VideoWriteError" in first["error_messages"][0] and "No space left on device" in first["error_messages"][0]
    assert not list((tmp_path / "run" / "videos").glob("*.mp4"))
    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE")
    second = evaluate(cfg)["tasks"]["reach-v3"]
    assert (second["episodes"], second["errors"]) == (2, 0)
    assert len(list((tmp_path / "run" / "videos").glob("reach-v3_ep000_*.mp4"))) == 1


def test_interrupted_run_keeps_finished_episodes_and_resumes(tmp_path):
    # Full-length episodes (no early stop at success) leave seconds to interrupt the run in.
    command = [sys.executable, "eval.py", "env=metaworld_mt1", "env.task=reach-v3", "episodes_per_task=12",
               "env.terminate_on_success=false", "env.max_episode_steps=300",
               "rollout.num_workers=1", "rollout.envs_per_worker=1", "rollout.videos_per_task=0",
               f"out_dir={tmp_path}", "progress=false"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    journal = tmp_path / "episodes.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if journal.exists() and len(journal.read_text().splitlines()) >= 4:  # header + 3 episodes
            break
        time.sleep(0.02)
    # SIGTERM (a kill) takes the same path as Ctrl-C; SIGINT itself is ignored by processes
    # started in the background of a non-interactive shell, as CI may start the tests.
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=60)[0].decode()
    assert process.returncode == 130, output
    finished = _journal(tmp_path)
    assert 3 <= len(finished) < 12, output
    partial = json.loads((tmp_path / "results.json").read_text())
    assert partial["metadata"]["complete"] is False

    rerun = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    records = _journal(tmp_path)
    episodes = [r["episode"] for r in records]
    assert sorted(episodes) == list(range(12))  # every episode exactly once: nothing re-ran
    final = json.loads((tmp_path / "results.json").read_text())
    assert final["metadata"]["complete"] is True and final["tasks"]["reach-v3"]["episodes"] == 12


@pytest.mark.slow
def test_experts_solve_mt10_under_the_official_protocol(tmp_path):
    cfg = EvalConfig(env=EnvConfig(suite="metaworld_mt10"), out_dir=str(tmp_path), progress=False,
                     rollout=RolloutConfig(num_workers=2, videos_per_task=0))
    results = evaluate(cfg)
    assert results["suite"]["episodes"] == 500 and results["suite"]["errors"] == 0
    assert results["suite"]["mean_success"] >= 0.95  # measured 0.98
    assert all(task["success_rate"] >= 0.8 for task in results["tasks"].values())


def test_a_policy_for_other_dimensions_or_cameras_is_refused_before_any_rollout():
    from common.schema import Task
    from envs.registry import make_suite
    from policies.spec import PolicySpec
    from workflows.evaluate import check_policy_fits

    suite = make_suite(EnvConfig(suite="metaworld_mt10"))
    libero_like = PolicySpec(state_dim=9, action_dim=7, tasks=[Task("libero_object", "pick-x", 0, "pick x")])
    with pytest.raises(ValueError, match="action dim 7"):
        check_policy_fits(libero_like, suite)
    with_camera = PolicySpec(39, 4, list(suite.tasks), image_shapes={"corner": (3, 96, 96)})
    with pytest.raises(ValueError, match="env.cameras=\\['corner'\\] env.image_size=96"):
        check_policy_fits(with_camera, suite)
    check_policy_fits(PolicySpec(39, 4, list(suite.tasks)), suite)  # a state policy for MT10 fits


def _random_diffusion_checkpoint(directory: Path) -> Path:
    """An untrained diffusion policy for Meta-World (39-d state, 4-d actions): its sampled actions, and so
    its episodes, depend on every bit of the noise and of the arithmetic."""
    import torch

    from common.schema import Task
    from policies.checkpoint import save_policy
    from policies.diffusion import DiffusionConfig
    from policies.registry import make_policy
    from policies.spec import PolicySpec

    torch.manual_seed(0)
    config = DiffusionConfig(conditioning=ConditioningConfig(text=False, dim=16))
    config.unet.down_dims = [32, 64]
    policy = make_policy(config, PolicySpec(39, 4, [Task("metaworld_mt1", "reach-v3", 0, "reach")]))
    return save_policy(directory, policy)


def test_a_learned_policy_gives_the_same_episodes_for_any_worker_and_slot_count(tmp_path):
    checkpoint = _random_diffusion_checkpoint(tmp_path / "run" / "checkpoints" / "last")
    journals = []
    for name, workers, slots in (("one", 1, 1), ("two", 2, 3), ("again", 2, 3)):
        cfg = EvalConfig(env=EnvConfig(suite="metaworld_mt1", task="reach-v3", max_episode_steps=40),
                         checkpoint=str(checkpoint), episodes_per_task=6, out_dir=str(tmp_path / name),
                         rollout=RolloutConfig(num_workers=workers, envs_per_worker=slots, videos_per_task=0),
                         progress=False)
        evaluate(cfg)
        journals.append(sorted((r["episode"], r["success"], r["length"], r["reward"])
                               for r in _journal(tmp_path / name)))
    assert journals[0] == journals[1] == journals[2]
    assert len({reward for _, _, _, reward in journals[0]}) == 6  # six different episodes, not six copies


def test_acting_overrides_change_the_chunks_and_are_part_of_the_run_identity(tmp_path):
    checkpoint = _random_diffusion_checkpoint(tmp_path / "run" / "checkpoints" / "last")
    env = EnvConfig(suite="metaworld_mt1", task="reach-v3", max_episode_steps=40)

    def run(name: str, acting: ActingConfig) -> tuple[dict, list]:
        results = evaluate(EvalConfig(env=env, checkpoint=str(checkpoint), acting=acting, episodes_per_task=3,
                                      out_dir=str(tmp_path / name), progress=False,
                                      rollout=RolloutConfig(num_workers=1, envs_per_worker=3, videos_per_task=0)))
        return results["metadata"]["identity"]["policy"], sorted((r["episode"], r["reward"])
                                                                 for r in _journal(tmp_path / name))

    plain_identity, plain = run("plain", ActingConfig())
    cheap_identity, cheap = run("cheap", ActingConfig(n_action_steps=4, num_inference_steps=3))
    assert "acting" not in plain_identity
    assert cheap_identity["acting"] == {"n_action_steps": 4, "num_inference_steps": 3}
    assert cheap != plain  # other chunks, other episodes
    with pytest.raises(ValueError, match="acting.n_action_steps=17.*choose 1..16"):
        run("bad", ActingConfig(n_action_steps=17))
    with pytest.raises(ValueError, match="give its checkpoint"):
        evaluate(EvalConfig(env=env, acting=ActingConfig(num_inference_steps=3), out_dir=str(tmp_path / "expert")))
