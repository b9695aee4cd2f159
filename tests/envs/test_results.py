"""Tests for envs/results.py: statistics against known values, result files, resume journal."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from common.schema import Task
from envs.results import (
    EpisodeJournal,
    EpisodeRecord,
    ResumeMismatchError,
    bootstrap_mean_interval,
    config_fingerprint,
    format_markdown,
    summarize,
    wilson_interval,
    write_results,
)

Z95 = 1.959963984540054  # two-sided 95% standard normal quantile


def closed_form_wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval from its textbook formula, independent of scipy."""
    p = k / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, center - half), min(1.0, center + half))


def record(task: str, episode: int, status: str = "ok", success: bool = True, length: int = 100,
           message: str | None = None) -> EpisodeRecord:
    index = {"push-v3": 0, "reach-v3": 1, "pick-place-v3": 2}[task]
    return EpisodeRecord(task=task, task_index=index, episode=episode, status=status,
                         success=success, length=length, message=message)


TASKS = [
    # Deliberately out of index order: summarize must sort by index.
    Task(suite="mt", name="reach-v3", index=1, instruction="reach the goal"),
    Task(suite="mt", name="push-v3", index=0, instruction="push the puck"),
    Task(suite="mt", name="pick-place-v3", index=2, instruction="pick and place"),
]


# ----------------------------------------------------------------------------- EpisodeRecord


def test_record_round_trip():
    rec = EpisodeRecord("push-v3", 0, 3, "unstable", False, 17, message="qacc", video="videos/a.mp4", retries=2)
    assert EpisodeRecord.from_dict(json.loads(json.dumps(rec.to_dict()))) == rec


def test_a_journal_line_written_before_retries_existed_reads_as_no_retries():
    old = {"task": "push-v3", "task_index": 0, "episode": 3, "status": "ok", "success": True, "length": 17,
           "reward": 1.5, "message": None, "video": None}
    assert EpisodeRecord.from_dict(old).retries == 0
    records = [EpisodeRecord.from_dict(old), EpisodeRecord("push-v3", 0, 4, "ok", True, 9, retries=1)]
    summary = summarize(records, [Task("mt", "push-v3", 0, "push")])
    assert summary["tasks"]["push-v3"]["retries"] == summary["suite"]["retries"] == 1


def test_record_rejects_unknown_status():
    with pytest.raises(ValueError, match="status"):
        EpisodeRecord("push-v3", 0, 0, "crashed", False, 0)


# ----------------------------------------------------------------------------- Wilson


@pytest.mark.parametrize("k, n, expected", [
    (8, 10, (0.4902, 0.9433)),
    (0, 10, (0.0, 0.2775)),
    (10, 10, (0.7225, 1.0)),
    (45, 50, (0.7864, 0.9565)),
])
def test_wilson_known_values(k, n, expected):
    low, high = wilson_interval(k, n)
    assert low == pytest.approx(expected[0], abs=1e-3)
    assert high == pytest.approx(expected[1], abs=1e-3)
    ref_low, ref_high = closed_form_wilson(k, n)
    assert low == pytest.approx(ref_low, abs=1e-3)
    assert high == pytest.approx(ref_high, abs=1e-3)


def test_wilson_no_episodes_is_uninformative():
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_wilson_wider_at_higher_confidence():
    low95, high95 = wilson_interval(8, 10, 0.95)
    low99, high99 = wilson_interval(8, 10, 0.99)
    assert low99 < low95 and high99 > high95


@pytest.mark.parametrize("k, n", [(-1, 10), (11, 10), (0, -1)])
def test_wilson_bad_input_raises(k, n):
    with pytest.raises(ValueError):
        wilson_interval(k, n)


# ----------------------------------------------------------------------------- bootstrap

DATA = [0.9, 0.7, 1.0, 0.4, 0.8, 0.6, 0.95, 0.5, 0.85, 0.75]


def numpy_percentile_bootstrap(values: list[float], n_resamples: int = 20_000) -> tuple[float, float]:
    """Percentile bootstrap of the mean, written out with numpy only."""
    rng = np.random.default_rng(12345)
    data = np.asarray(values)
    means = rng.choice(data, size=(n_resamples, data.size), replace=True).mean(axis=1)
    return tuple(np.percentile(means, [2.5, 97.5]))


@pytest.mark.parametrize("values", [[0.5], [0.7, 0.7, 0.7, 0.7]])
def test_bootstrap_degenerate_gives_point_without_warnings(values):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert bootstrap_mean_interval(values) == (values[0], values[0])


def test_bootstrap_matches_numpy_reference():
    low, high = bootstrap_mean_interval(DATA)
    ref_low, ref_high = numpy_percentile_bootstrap(DATA)
    assert low == pytest.approx(ref_low, abs=0.02)
    assert high == pytest.approx(ref_high, abs=0.02)


def test_bootstrap_is_seeded_and_contains_mean():
    assert bootstrap_mean_interval(DATA, seed=3) == bootstrap_mean_interval(DATA, seed=3)
    low, high = bootstrap_mean_interval(DATA)
    assert low < np.mean(DATA) < high


def test_bootstrap_empty_raises():
    with pytest.raises(ValueError):
        bootstrap_mean_interval([])


# ----------------------------------------------------------------------------- summarize


def make_summary() -> dict:
    records = [
        # push-v3: 3 ok successes, 1 unstable (failure), 2 errors -> 3/4
        record("push-v3", 0, length=50),
        record("push-v3", 1, length=60),
        record("push-v3", 2, success=False, length=200),  # superseded below
        record("push-v3", 2, length=70),
        record("push-v3", 3, status="unstable", success=False, length=20, message="qacc"),
        record("push-v3", 4, status="error", success=False, length=0, message="worker died"),
        record("push-v3", 5, status="error", success=False, length=0, message="worker died"),
        # reach-v3: 1/2; an earlier error is superseded by a successful re-run
        record("reach-v3", 0, status="error", success=False, length=0, message="boom"),
        record("reach-v3", 0, length=30),
        record("reach-v3", 1, success=False, length=150),
        # pick-place-v3: no records
    ]
    return summarize(records, TASKS)


def test_summarize_task_statistics():
    push = make_summary()["tasks"]["push-v3"]
    assert push["episodes"] == 4  # errors excluded, unstable counted
    assert push["successes"] == 3  # unstable counted as a failure; last duplicate won
    assert push["success_rate"] == 0.75
    assert push["ci95"] == pytest.approx(closed_form_wilson(3, 4), abs=1e-3)
    assert push["mean_length"] == pytest.approx((50 + 60 + 70 + 20) / 4)
    assert push["unstable"] == 1
    assert push["errors"] == 2
    assert push["error_messages"] == ["worker died"]
    assert push["index"] == 0 and push["instruction"] == "push the puck"


def test_summarize_last_duplicate_wins_over_error():
    reach = make_summary()["tasks"]["reach-v3"]
    assert (reach["episodes"], reach["successes"], reach["errors"]) == (2, 1, 0)
    assert reach["error_messages"] == []


def test_summarize_task_without_records_and_ordering():
    summary = make_summary()
    assert list(summary["tasks"]) == ["push-v3", "reach-v3", "pick-place-v3"]
    empty = summary["tasks"]["pick-place-v3"]
    assert empty["episodes"] == 0 and empty["successes"] == 0
    assert empty["success_rate"] is None and empty["mean_length"] is None
    assert empty["ci95"] == [0.0, 1.0]


def test_summarize_suite():
    suite = make_summary()["suite"]
    assert suite["tasks"] == 3
    assert suite["episodes"] == 6 and suite["successes"] == 4
    # Mean of task rates (0.75, 0.5), not pooled 4/6; the empty task is left out.
    assert suite["mean_success"] == pytest.approx((0.75 + 0.5) / 2)
    assert suite["ci95"][0] <= suite["mean_success"] <= suite["ci95"][1]
    assert suite["ci95"] == pytest.approx(list(bootstrap_mean_interval([0.75, 0.5])), abs=1e-4)
    assert suite["errors"] == 2 and suite["unstable"] == 1


def test_a_suite_of_one_task_gets_that_tasks_wilson_interval_not_a_point():
    records = [record("push-v3", e, success=e < 7) for e in range(10)]
    summary = summarize(records, [t for t in TASKS if t.name == "push-v3"])
    assert summary["suite"]["ci95"] == summary["tasks"]["push-v3"]["ci95"]
    assert summary["suite"]["ci95"] == pytest.approx(closed_form_wilson(7, 10), abs=1e-3)
    text = format_markdown(summary, "one task")
    assert "**suite (1 task)**" in text and "the task's, as it is the only one" in text


def test_summarize_error_messages_capped_and_distinct():
    records = [record("push-v3", i, status="error", success=False, length=0, message=f"m{i % 7}")
               for i in range(20)]
    assert summarize(records, TASKS)["tasks"]["push-v3"]["error_messages"] == ["m0", "m1", "m2", "m3", "m4"]


def test_summarize_unknown_task_raises():
    stray = EpisodeRecord("door-open-v3", 9, 0, "ok", True, 10)
    with pytest.raises(ValueError, match="door-open-v3"):
        summarize([stray], TASKS)


# ----------------------------------------------------------------------------- result files


def test_format_markdown_rows():
    text = format_markdown(make_summary(), "MT3 eval")
    assert text.startswith("# MT3 eval")
    assert "| # | task | success | 95% CI | episodes | mean length | unstable | errors |" in text
    for name in ("push-v3", "reach-v3", "pick-place-v3"):
        assert f"| {name} |" in text
    assert "| 0 | push-v3 | 0.75 |" in text
    assert "**suite (3 tasks)**" in text
    assert "**0.62**" in text  # mean success 0.625, formatted to two decimals
    assert "Wilson 95% intervals per task; bootstrap 95% interval across tasks." in text


def test_write_results_round_trip(tmp_path: Path):
    summary = make_summary()
    metadata = {"policy": "scripted", "seed": 0}
    json_path, md_path = write_results(tmp_path / "run", summary, metadata, "MT3 eval")
    assert json_path == tmp_path / "run" / "results.json"
    loaded = json.loads(json_path.read_text())
    assert loaded == {"metadata": metadata, **json.loads(json.dumps(summary))}
    assert md_path.read_text() == format_markdown(summary, "MT3 eval")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["results.json", "results.md"]


# ----------------------------------------------------------------------------- journal


def test_config_fingerprint_is_order_independent():
    assert config_fingerprint({"a": 1, "b": [1, 2]}) == config_fingerprint({"b": [1, 2], "a": 1})
    assert config_fingerprint({"a": 1}) != config_fingerprint({"a": 2})
    assert len(config_fingerprint({})) == 16


def test_journal_round_trip(tmp_path: Path):
    path = tmp_path / "deep" / "episodes.jsonl"
    written = [record("push-v3", 0), record("push-v3", 1, status="unstable", success=False)]
    with EpisodeJournal.open(path, "abc") as journal:
        assert journal.records == []
        for rec in written:
            journal.append(rec)
    with EpisodeJournal.open(path, "abc") as journal:
        assert journal.records == written
        journal.append(record("reach-v3", 0))
    with EpisodeJournal.open(path, "abc") as journal:
        assert journal.records == written + [record("reach-v3", 0)]
    assert json.loads(path.read_text().splitlines()[0]) == {"fingerprint": "abc"}


def test_journal_done_keys_skip_errors(tmp_path: Path):
    with EpisodeJournal.open(tmp_path / "episodes.jsonl", "abc") as journal:
        journal.append(record("push-v3", 0))
        journal.append(record("push-v3", 1, status="unstable", success=False))
        journal.append(record("push-v3", 2, status="error", success=False, message="died"))
        journal.append(record("reach-v3", 0, status="error", success=False))
        journal.append(record("reach-v3", 0))  # the retry succeeded
        assert journal.done_keys() == {("push-v3", 0), ("push-v3", 1), ("reach-v3", 0)}


def test_journal_truncated_last_line_is_repaired(tmp_path: Path, caplog):
    path = tmp_path / "episodes.jsonl"
    with EpisodeJournal.open(path, "abc") as journal:
        journal.append(record("push-v3", 0))
    full_line = json.dumps(record("push-v3", 1).to_dict())
    with path.open("a") as file:
        file.write(full_line[: len(full_line) // 2])  # killed mid-write
    with caplog.at_level("WARNING"), EpisodeJournal.open(path, "abc") as journal:
        assert journal.records == [record("push-v3", 0)]
        journal.append(record("push-v3", 1))
    assert "truncated" in caplog.text
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines[1:]] == [record("push-v3", i).to_dict() for i in (0, 1)]
    with EpisodeJournal.open(path, "abc") as journal:
        assert journal.records == [record("push-v3", 0), record("push-v3", 1)]


def test_journal_complete_last_line_without_newline(tmp_path: Path):
    path = tmp_path / "episodes.jsonl"
    path.write_text('{"fingerprint": "abc"}\n' + json.dumps(record("push-v3", 0).to_dict()))
    with EpisodeJournal.open(path, "abc") as journal:
        journal.append(record("push-v3", 1))
    with EpisodeJournal.open(path, "abc") as journal:
        assert journal.records == [record("push-v3", 0), record("push-v3", 1)]


def test_journal_corrupt_middle_line_raises(tmp_path: Path):
    path = tmp_path / "episodes.jsonl"
    good = json.dumps(record("push-v3", 0).to_dict())
    path.write_text('{"fingerprint": "abc"}\n' + good + "\n{not json\n" + good + "\n")
    with pytest.raises(ValueError, match=r"episodes\.jsonl: line 3"):
        EpisodeJournal.open(path, "abc")


def test_journal_fingerprint_mismatch_raises(tmp_path: Path):
    path = tmp_path / "episodes.jsonl"
    EpisodeJournal.open(path, "old-fp").close()
    with pytest.raises(ResumeMismatchError) as info:
        EpisodeJournal.open(path, "new-fp")
    message = str(info.value)
    assert str(path) in message and "old-fp" in message and "new-fp" in message
    assert "another out_dir or delete the file" in message
    assert isinstance(info.value, ValueError)
