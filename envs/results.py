"""Per-episode records, success statistics, result files and the resume journal.

An evaluation run appends one `EpisodeRecord` per finished episode to an
`EpisodeJournal` (``episodes.jsonl``), so a killed run resumes where it stopped.
At the end `summarize` turns the records into per-task and suite statistics, and
`write_results` writes ``results.json`` and ``results.md`` next to the journal.

Statistics:
    per task   Wilson score interval on successes / episodes (errors excluded).
    suite      percentile bootstrap interval of the mean of the task success rates.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self, TextIO

import numpy as np
from scipy import stats

from common.atomic import disk_full_error, is_disk_full, write_text
from common.schema import Task

logger = logging.getLogger(__name__)

STATUSES = ("ok", "unstable", "error")
MAX_ERROR_MESSAGES = 5
JOURNAL_NAME = "episodes.jsonl"


@dataclass
class EpisodeRecord:
    """The outcome of one evaluation episode.

    Attributes:
        task: the simulator's task name, e.g. ``push-v3``.
        task_index: index of the task within its suite.
        episode: episode index within the task; it also selects the goal variation.
        status: ``ok``; ``unstable`` (MuJoCo reported a numerical instability, counted as
            a failed episode); or ``error`` (the worker raised or died, excluded from
            success statistics and retried on resume).
        success: whether the task's success flag was reached.
        length: env steps executed.
        reward: the env's reward summed over the episode (None for errors): it follows every action, so two
            runs that agree on it took the same actions.
        message: what went wrong, for ``unstable`` and ``error`` episodes.
        video: path of the episode's mp4, relative to the run's output directory.
        retries: times the episode was started again because the process running it died or its node was
            lost (the Ray backend; always 0 with the local engine, whose dead workers' episodes are errors).
            Journals written before this field existed read as 0.
    """

    task: str
    task_index: int
    episode: int
    status: str
    success: bool
    length: int
    reward: float | None = None
    message: str | None = None
    video: str | None = None
    retries: int = 0

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"EpisodeRecord.status must be one of {STATUSES}, got {self.status!r}")

    @property
    def key(self) -> tuple[str, int]:
        """(task, episode): identifies the episode across a resumed run."""
        return (self.task, self.episode)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> EpisodeRecord:
        return cls(task=record["task"], task_index=int(record["task_index"]),
                   episode=int(record["episode"]), status=record["status"],
                   success=bool(record["success"]), length=int(record["length"]), reward=record.get("reward"),
                   message=record.get("message"), video=record.get("video"),
                   retries=int(record.get("retries") or 0))


# ----------------------------------------------------------------------------- statistics


def wilson_interval(successes: int, episodes: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial success rate; (0.0, 1.0) when there are no episodes."""
    if episodes < 0 or successes < 0 or successes > episodes:
        raise ValueError(f"need 0 <= successes <= episodes, got successes={successes}, episodes={episodes}")
    if episodes == 0:
        return (0.0, 1.0)
    ci = stats.binomtest(successes, episodes).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))


def bootstrap_mean_interval(values: Sequence[float], confidence: float = 0.95,
                            n_resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values``.

    A single value, or values that are all equal, give the point interval (v, v): the
    bootstrap distribution is degenerate and scipy would warn or refuse.
    """
    data = np.asarray(values, dtype=float)
    if data.ndim != 1 or data.size == 0:
        raise ValueError(f"need a non-empty 1-D sequence of values, got shape {data.shape}")
    if np.all(data == data[0]):
        return (float(data[0]), float(data[0]))
    result = stats.bootstrap((data,), np.mean, n_resamples=n_resamples, confidence_level=confidence,
                             method="percentile", rng=np.random.default_rng(seed))
    return (float(result.confidence_interval.low), float(result.confidence_interval.high))


def _latest_records(records: list[EpisodeRecord]) -> list[EpisodeRecord]:
    """Drop duplicate (task, episode) records, keeping the last: a resumed run may re-run one."""
    latest = {record.key: record for record in records}
    return list(latest.values())


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def _summarize_task(task: Task, records: list[EpisodeRecord]) -> dict[str, Any]:
    """Statistics of one task; ``success_rate`` and ``mean_length`` are None without valid episodes."""
    valid = [r for r in records if r.status != "error"]
    successes = sum(r.success for r in valid)
    low, high = wilson_interval(successes, len(valid))
    messages = [r.message for r in records if r.status == "error" and r.message]
    return {
        "index": task.index,
        "instruction": task.instruction,
        "episodes": len(valid),
        "successes": successes,
        "success_rate": _round(successes / len(valid)) if valid else None,
        "ci95": [_round(low), _round(high)],
        "mean_length": _round(np.mean([r.length for r in valid])) if valid else None,
        "unstable": sum(r.status == "unstable" for r in records),
        "errors": len(records) - len(valid),
        "retries": sum(r.retries for r in records),
        "error_messages": list(dict.fromkeys(messages))[:MAX_ERROR_MESSAGES],
    }


def _summarize_suite(task_stats: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Suite statistics over tasks; tasks without valid episodes do not enter the mean. The interval is a
    bootstrap over tasks, or with one task its Wilson interval over episodes (a bootstrap over one value
    would be a point)."""
    rated = [s for s in task_stats.values() if s["success_rate"] is not None]
    rates = [s["success_rate"] for s in rated]
    low, high = rated[0]["ci95"] if len(rated) == 1 else bootstrap_mean_interval(rates) if rates else (0.0, 1.0)
    return {
        "tasks": len(task_stats),
        "episodes": sum(s["episodes"] for s in task_stats.values()),
        "successes": sum(s["successes"] for s in task_stats.values()),
        "mean_success": _round(np.mean(rates)) if rates else None,
        "ci95": [_round(low), _round(high)],
        "errors": sum(s["errors"] for s in task_stats.values()),
        "unstable": sum(s["unstable"] for s in task_stats.values()),
        "retries": sum(s["retries"] for s in task_stats.values()),
    }


def summarize(records: list[EpisodeRecord], tasks: list[Task]) -> dict[str, Any]:
    """Per-task and suite statistics of an evaluation.

    ``episodes`` counts ``ok`` and ``unstable`` episodes (unstable ones as failures);
    ``error`` episodes are only counted under ``errors``. Tasks are ordered by index and
    every task in ``tasks`` appears, with ``episodes`` 0 if it has no records.

    Returns:
        ``{"tasks": {name: {...}}, "suite": {...}}``, floats rounded to 4 decimals.

    Raises:
        ValueError: a record names a task that is not in ``tasks``.
    """
    records = _latest_records(records)
    known = {task.name for task in tasks}
    unknown = sorted({r.task for r in records} - known)
    if unknown:
        raise ValueError(f"records for tasks {unknown} that are not in the task list {sorted(known)}")
    task_stats = {
        task.name: _summarize_task(task, [r for r in records if r.task == task.name])
        for task in sorted(tasks, key=lambda t: t.index)
    }
    return {"tasks": task_stats, "suite": _summarize_suite(task_stats)}


# ----------------------------------------------------------------------------- result files


def _format_rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _format_interval(interval: list[float]) -> str:
    return f"[{interval[0]:.2f}, {interval[1]:.2f}]"


def suite_label(suite: dict[str, Any]) -> str:
    """The suite row's name in result tables: "suite (10 tasks)", "suite (1 task)"."""
    return f"suite ({suite['tasks']} task{'s' if suite['tasks'] != 1 else ''})"


def format_markdown(summary: dict[str, Any], title: str) -> str:
    """A GitHub markdown table of `summarize`'s output: one row per task, then the suite row."""
    lines = [
        f"# {title}",
        "",
        "| # | task | success | 95% CI | episodes | mean length | unstable | errors |",
        "|---:|---|---:|---|---:|---:|---:|---:|",
    ]
    for name, s in summary["tasks"].items():
        length = "n/a" if s["mean_length"] is None else f"{s['mean_length']:.1f}"
        lines.append(f"| {s['index']} | {name} | {_format_rate(s['success_rate'])} | "
                     f"{_format_interval(s['ci95'])} | {s['episodes']} | {length} | "
                     f"{s['unstable']} | {s['errors']} |")
    suite = summary["suite"]
    lines.append(f"| | **{suite_label(suite)}** | **{_format_rate(suite['mean_success'])}** | "
                 f"**{_format_interval(suite['ci95'])}** | **{suite['episodes']}** | | "
                 f"**{suite['unstable']}** | **{suite['errors']}** |")
    across = "the task's, as it is the only one" if suite["tasks"] == 1 else "bootstrap 95% interval across tasks"
    lines += ["", f"Wilson 95% intervals per task; {across}.", ""]
    return "\n".join(lines)


def write_results(out_dir: Path, summary: dict[str, Any], metadata: dict[str, Any],
                  title: str) -> tuple[Path, Path]:
    """Write ``results.json`` (metadata plus summary) and ``results.md``; returns both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "results.json", out_dir / "results.md"
    write_text(json_path, json.dumps({"metadata": metadata, **summary}, indent=2) + "\n")
    write_text(md_path, format_markdown(summary, title))
    logger.info("wrote %s and %s", json_path, md_path)
    return json_path, md_path


# ----------------------------------------------------------------------------- resume journal


def config_fingerprint(config: dict[str, Any]) -> str:
    """First 16 hex digits of the sha256 of the config as sorted JSON."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode("utf-8")).hexdigest()[:16]


class ResumeMismatchError(ValueError):
    """The journal on disk was written by a run with a different configuration."""


def _parse_record(line: bytes) -> EpisodeRecord:
    return EpisodeRecord.from_dict(json.loads(line))


class EpisodeJournal:
    """Append-only JSON-lines log of finished episodes, for resuming a killed run.

    The first line is the header ``{"fingerprint": ...}``; every further line is one
    `EpisodeRecord` dict. Open it with `EpisodeJournal.open`.
    """

    def __init__(self, path: Path, fingerprint: str, records: list[EpisodeRecord], file: TextIO):
        self.path = path
        self.fingerprint = fingerprint
        self._records = records
        self._file = file

    @classmethod
    def open(cls, path: Path, fingerprint: str) -> EpisodeJournal:
        """Open the journal at ``path``, creating it (and its parent dirs) if absent.

        Raises:
            ResumeMismatchError: the file was written under another fingerprint.
            ValueError: a line other than the last one is corrupt.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.stat().st_size == 0:
            path.write_text(json.dumps({"fingerprint": fingerprint}) + "\n", encoding="utf-8")
            records = []
        else:
            records = _read_journal(path, fingerprint)
            logger.info("resuming from %s: %d episode records", path, len(records))
        return cls(path, fingerprint, records, path.open("a", encoding="utf-8"))

    @property
    def records(self) -> list[EpisodeRecord]:
        """Every record in the file, including those appended through this journal."""
        return list(self._records)

    def append(self, record: EpisodeRecord) -> None:
        """Write one record and force it to disk, so a kill loses at most the episode in flight.

        Raises:
            DiskFullError: the disk is full; the file is cut back to its last complete record.
        """
        end = self._file.tell()
        try:
            self._file.write(json.dumps(record.to_dict()) + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as error:
            self._file = self._reopen_at(end)
            if is_disk_full(error):
                raise disk_full_error(self.path, error) from error
            raise
        self._records.append(record)

    def _reopen_at(self, size: int) -> TextIO:
        """Drop a record that was written only in part, and reopen for appending."""
        try:
            self._file.close()
        except OSError:  # flushing the buffered rest fails the same way; it is cut off below anyway
            pass
        with self.path.open("r+b") as file:
            file.truncate(size)
        return self.path.open("a", encoding="utf-8")

    def done_keys(self) -> set[tuple[str, int]]:
        """(task, episode) of the episodes not to run again; ``error`` episodes are retried."""
        return {r.key for r in _latest_records(self._records) if r.status != "error"}

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _read_header(path: Path, line: bytes, fingerprint: str) -> None:
    """Check the journal's header line against the fingerprint of the current run."""
    try:
        found = json.loads(line)["fingerprint"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: line 1 is not a journal header {{'fingerprint': ...}}") from err
    if found != fingerprint:
        raise ResumeMismatchError(
            f"{path} was written by a run with config fingerprint {found}, but this run's "
            f"fingerprint is {fingerprint}: the configuration changed. To start afresh, "
            f"use another out_dir or delete the file.")


def _read_journal(path: Path, fingerprint: str) -> list[EpisodeRecord]:
    """Read the records of an existing journal, repairing a last line cut off by a kill."""
    lines = path.read_bytes().splitlines(keepends=True)
    _read_header(path, lines[0], fingerprint)
    records, good_bytes = [], len(lines[0])
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            good_bytes += len(line)
            continue
        try:
            records.append(_parse_record(line))
        except (ValueError, KeyError, TypeError) as err:
            if number < len(lines):
                raise ValueError(f"{path}: line {number} is corrupt ({err}); "
                                 f"fix or delete that line, or delete the file") from err
            logger.warning("%s: ignoring truncated last line %d (a run killed mid-write)", path, number)
            break
        good_bytes += len(line)
    total_bytes = sum(len(line) for line in lines)
    if good_bytes < total_bytes or not lines[-1].endswith(b"\n"):
        _truncate_to(path, good_bytes)
    return records


def _truncate_to(path: Path, size: int) -> None:
    """Cut ``path`` back to ``size`` bytes and make sure it ends with a newline, for appending."""
    with path.open("r+b") as file:
        file.truncate(size)
        file.seek(0, os.SEEK_END)
        if file.tell() > 0:
            file.seek(-1, os.SEEK_END)
            if file.read(1) != b"\n":
                file.write(b"\n")
        file.flush()
        os.fsync(file.fileno())
