"""workflows.compare on synthetic run folders: tables, paired differences, files, and runs it must refuse."""

from __future__ import annotations

import json
import shutil
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from torch.utils.tensorboard import SummaryWriter

from tests.workflows.synthetic_runs import (
    SAMPLES_PER_S,
    STEP_TIME_S,
    STEPS,
    TASKS,
    write_run,
)
from workflows.compare import CompareConfig, compare
from workflows.compare.__main__ import main
from workflows.compare.report import StatsOptions
from workflows.compare.runs import LabelOptions
from workflows.compare.tensorboard_log import read_tensorboard

BASE = [0.6, 0.5, 0.3, 0.8]
BETTER = [0.9, 0.8, 0.6, 0.95]  # +0.26 on average, on every goal the baseline solves and more


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """sum and cagrad (identical to sum) and pcgrad (better), two seeds each, as a multirun folder."""
    root = tmp_path_factory.mktemp("multirun")
    for method, success in (("sum", BASE), ("pcgrad", BETTER), ("cagrad", BASE)):
        for seed in (0, 1):
            write_run(root / f"{method}_seed{seed}", method, seed, success)
    return root


def run_compare(runs: list[str], out: Path, **kwargs) -> dict:
    stats = StatsOptions(baseline=kwargs.pop("baseline", "sum"), resamples=2000)
    return compare(CompareConfig(runs=runs, out_dir=str(out), stats=stats, **kwargs))


def test_compare_finds_the_better_method_and_no_difference_for_an_identical_one(sweep, tmp_path):
    result = run_compare([str(sweep)], tmp_path)
    assert list(result["methods"]) == ["sum", "cagrad", "pcgrad"]  # the baseline first
    assert result["methods"]["pcgrad"]["seeds"] == [0, 1] and result["methods"]["pcgrad"]["episodes"] == 160
    better, same = result["comparisons"]["pcgrad"], result["comparisons"]["cagrad"]
    expected = result["methods"]["pcgrad"]["mean_success"] - result["methods"]["sum"]["mean_success"]
    assert better["estimate"] == pytest.approx(expected, abs=1e-3) and better["estimate"] > 0.15
    assert better["ci"][0] > 0 and better["p_value"] < 0.01 and better["verdict"] == "higher"
    assert better["pairs"] == 160 and better["seeds"] == [0, 1]
    assert same["estimate"] == 0 and same["ci"] == [0, 0] and same["p_value"] == 1
    assert same["verdict"] == "no significant difference"
    assert better["p_holm"] == pytest.approx(min(1.0, 2 * better["p_value"]), abs=1e-6)  # the smaller of two p
    for task in TASKS:
        row = result["methods"]["sum"]["tasks"][task]
        assert row["episodes"] == 40 and row["ci"][0] <= row["success_rate"] <= row["ci"][1]
        assert better["tasks"][task]["estimate"] >= 0 and better["tasks"][task]["pairs"] == 40


def test_training_time_and_speed_come_from_the_tensorboard_logs(sweep, tmp_path):
    training = run_compare([str(sweep)], tmp_path)["methods"]["sum"]["training"]
    harmonic = len(SAMPLES_PER_S) / sum(1 / v for v in SAMPLES_PER_S)
    assert training["samples_per_s"] == pytest.approx(harmonic, abs=0.1)
    assert training["wall_time_s"] == pytest.approx(STEPS * STEP_TIME_S, abs=0.5)  # first logged step to last
    assert training["by_seed"]["1"]["steps"] == STEPS


def test_every_report_file_is_written(sweep, tmp_path):
    run_compare([str(sweep)], tmp_path)
    on_disk = json.loads((tmp_path / "compare.json").read_text())
    assert on_disk["baseline"] == "sum" and on_disk["metadata"]["git_commit"] is not None
    markdown = (tmp_path / "compare.md").read_text()
    assert "| pcgrad | 0, 1 |" in markdown and "better than the baseline" in markdown
    assert "| cagrad | +0.000 | [+0.000, +0.000] | 1.000 |" in markdown
    html = (tmp_path / "compare.html").read_text()
    for table_id in ("methods-table", "differences-table", "tasks-table", "task-differences-table", "videos-table"):
        assert f'id="{table_id}"' in html
    videos = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "videos").rglob("*.mp4"))
    assert len(videos) == 3 * len(TASKS)  # the first video of each task, for each method
    assert all(f'src="{v}"' in html for v in videos)
    assert "https://" not in html and "<script" not in html  # readable offline, nothing fetched
    charts = [c for c in html.split('<svg class="chart"')[1:]]
    assert len(charts) >= 5
    for chart in charts:  # each inline SVG is well-formed
        ET.fromstring('<svg class="chart"' + chart.split("</svg>")[0] + "</svg>")
    assert 'data-chart="train/loss"' in html and 'data-chart="reach-v3"' in html  # per-task loss panels


def test_a_glob_and_run_folders_give_the_same_runs(sweep, tmp_path):
    by_folder = run_compare([str(sweep)], tmp_path / "a")
    by_glob = run_compare([str(sweep / "*_seed*")], tmp_path / "b")  # as a quoted glob reaches the command
    by_list = run_compare(sorted(str(p) for p in sweep.iterdir()), tmp_path / "c")
    assert by_folder["comparisons"] == by_glob["comparisons"] == by_list["comparisons"]


def test_a_run_without_a_method_is_refused_unless_labelled(tmp_path):
    write_run(tmp_path / "runs" / "old", None, 0, BASE, videos=False, tensorboard=False)
    write_run(tmp_path / "runs" / "new", "pcgrad", 0, BETTER, videos=False, tensorboard=False)
    with pytest.raises(ValueError, match="no trainer.multitask.method.*--label"):
        run_compare([str(tmp_path / "runs")], tmp_path / "out")
    labels = LabelOptions(labels=[("*/old", "sum")])
    result = run_compare([str(tmp_path / "runs")], tmp_path / "out", labels=labels)
    assert result["comparisons"]["pcgrad"]["verdict"] == "higher"
    assert result["methods"]["sum"]["training"]["wall_time_s"] is None  # no logs: said as n/a
    assert "| n/a |" in (tmp_path / "out" / "compare.md").read_text()


def test_runs_that_do_not_pair_up_are_refused_or_reported(tmp_path):
    write_run(tmp_path / "a", "sum", 0, BASE, videos=False, tensorboard=False)
    write_run(tmp_path / "b", "pcgrad", 0, BETTER, eval_seed=1, videos=False, tensorboard=False)
    with pytest.raises(ValueError, match="different evaluation seed"):
        run_compare([str(tmp_path / "a"), str(tmp_path / "b")], tmp_path / "out")
    write_run(tmp_path / "c", "pcgrad", 5, BETTER, videos=False, tensorboard=False)  # a seed the baseline lacks
    result = run_compare([str(tmp_path / "a"), str(tmp_path / "c")], tmp_path / "out")
    assert result["comparisons"]["pcgrad"]["paired"] is False
    assert "not paired" in (tmp_path / "out" / "compare.md").read_text()
    shutil.copytree(tmp_path / "a", tmp_path / "a_again")
    with pytest.raises(ValueError, match="two runs of method 'sum' with seed 0"):
        run_compare([str(tmp_path / "a"), str(tmp_path / "a_again")], tmp_path / "out")


def test_the_command_line_names_what_is_wrong(sweep, tmp_path, capsys):
    assert main([str(tmp_path / "nothing-here")]) == 1
    assert "no run folder" in capsys.readouterr().err
    assert main([str(sweep), "--out", str(tmp_path / "x")]) == 1
    assert "name the baseline with --baseline" in capsys.readouterr().err
    assert main([str(sweep), "--baseline", "adam", "--out", str(tmp_path / "x")]) == 1
    assert "baseline 'adam' is none of the methods" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(sweep), "--label", "no-equals-sign"])
    assert main([str(sweep / "*"), "--baseline", "sum", "--resamples", "500", "--out", str(tmp_path / "ok")]) == 0
    assert (tmp_path / "ok" / "compare.html").is_file()


def test_a_resumed_training_log_keeps_the_newer_points_and_sums_sessions(tmp_path):
    start = time.time()
    first = SummaryWriter(str(tmp_path))
    for step in (10, 20, 30):
        first.add_scalar("train/loss", 1.0, step, walltime=start + step)
    first.close()
    time.sleep(1.1)  # event files are named by the second they were created
    resumed = SummaryWriter(str(tmp_path), purge_step=20)  # the run was killed after step 20's checkpoint
    again = time.time()
    for step in (20, 30, 40):
        resumed.add_scalar("train/loss", 2.0, step, walltime=again + step - 20)
    resumed.close()
    log = read_tensorboard(tmp_path)
    assert log.scalars["train/loss"] == [(10, 1.0), (20, 2.0), (30, 2.0), (40, 2.0)]
    assert len(log.sessions) == 2
    assert log.wall_time_s == pytest.approx(30 + 20, abs=0.5)  # each session from its start to its last point
    assert read_tensorboard(tmp_path / "absent").wall_time_s is None


def test_a_method_whose_episodes_all_errored_is_named(tmp_path):
    write_run(tmp_path / "a", "sum", 0, BASE, videos=False, tensorboard=False)
    write_run(tmp_path / "b", "pcgrad", 0, BETTER, videos=False, tensorboard=False)
    journal = tmp_path / "b" / "final_eval" / "episodes.jsonl"
    lines = journal.read_text().splitlines()
    errored = [json.dumps(json.loads(line) | {"status": "error", "message": "worker died"}) for line in lines[1:]]
    journal.write_text("\n".join([lines[0], *errored]) + "\n")
    with pytest.raises(ValueError, match="method 'pcgrad' has no finished episodes"):
        run_compare([str(tmp_path / "a"), str(tmp_path / "b")], tmp_path / "out")
