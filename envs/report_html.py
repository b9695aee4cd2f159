"""results.html: one evaluation as a static page next to its results.json. Per-task success bars with their
Wilson intervals, the suite mean with its interval, the table of results.md, every video of the run, and the
protocol and provenance. Written by workflows/evaluate.py with the other result files.

    write_results_html(out_dir, {"metadata": metadata, **summary}, title, records)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.atomic import write_text
from common.html_report import Raw, Section, interval, key_value_table, page, rate, table, video_card
from common.svg_charts import BarSeries, interval_bars
from envs.results import EpisodeRecord, suite_label

logger = logging.getLogger(__name__)

HTML_NAME = "results.html"


def _summary_section(results: dict[str, Any]) -> Section:
    suite, meta = results["suite"], results["metadata"]
    protocol = meta.get("protocol", {})
    lines = [f'<p class="headline">{rate(suite["mean_success"])} <span style="font-size:18px">'
             f'{interval(suite["ci95"])}</span></p>',
             f'<p>Mean success over {suite["tasks"]} tasks ({suite["successes"]} of {suite["episodes"]} episodes'
             f'{", " + str(protocol["episodes_per_task"]) + " per task" if "episodes_per_task" in protocol else ""}'
             f'); 95% percentile bootstrap interval over tasks.</p>']
    if meta.get("complete") is False:
        lines.append('<p class="warn">This evaluation stopped before the end: the numbers cover the episodes '
                     "that finished. Re-run the same command to resume.</p>")
    if suite["errors"]:
        lines.append(f'<p class="warn">{suite["errors"]} episodes ended in an error and are left out of the '
                     "rates; re-running the same command retries them.</p>")
    return Section("summary", "Suite", "".join(lines))


def _task_section(results: dict[str, Any]) -> Section:
    tasks, suite = results["tasks"], results["suite"]
    names = list(tasks)
    chart = interval_bars(
        names, [BarSeries("success", [t["success_rate"] for t in tasks.values()],
                          [tuple(t["ci95"]) if t["success_rate"] is not None else None for t in tasks.values()])],
        "success per task", reference=(f"suite mean {rate(suite['mean_success'])}", suite["mean_success"],
                                       *suite["ci95"]) if suite["mean_success"] is not None else None)
    rows = [[t["index"], name, rate(t["success_rate"]), interval(t["ci95"]), t["episodes"],
             "n/a" if t["mean_length"] is None else f"{t['mean_length']:.1f}", t["unstable"], t["errors"],
             t.get("instruction", "")] for name, t in tasks.items()]
    rows.append(["", suite_label(suite), rate(suite["mean_success"]), interval(suite["ci95"]), suite["episodes"],
                 "", suite["unstable"], suite["errors"], ""])
    headers = ["#", "task", "success", "95% CI", "episodes", "mean length", "unstable", "errors", "instruction"]
    note = ('<p class="note">Bars: success rate per task; whiskers: Wilson 95% intervals (with 10 episodes per '
            "task about &plusmn;19 points at 0.9, with 50 about &plusmn;8.5). Dashed line and band: the mean over "
            "tasks and its bootstrap 95% interval. Unstable episodes (MuJoCo reported a numerical instability) "
            "count as failures; errors are left out.</p>")
    return Section("tasks", "Success per task", chart + note + table(headers, rows, "results-table",
                                                                      numeric=(0, 2, 4, 5, 6, 7),
                                                                      total_rows=(len(rows) - 1,)))


def _video_section(out_dir: Path, records: Sequence[EpisodeRecord], task_order: list[str]) -> Section:
    rank = {name: i for i, name in enumerate(task_order)}
    with_video = sorted((r for r in records if r.video and (out_dir / r.video).is_file()),
                        key=lambda r: (rank.get(r.task, len(rank)), r.episode))
    if not with_video:
        return Section("videos", "Videos", '<p class="note">No videos were recorded in this run '
                                           "(rollout.videos_per_task=0).</p>")
    cards = []
    for r in with_video:
        outcome = "success" if r.success else "failure"
        what = r.status if r.status != "ok" else outcome
        cards.append(video_card(Path(r.video).as_posix(), f"{r.task}, episode {r.episode}: {what}, {r.length} steps",
                                outcome))
    return Section("videos", f"Videos ({len(cards)})", Raw(f'<div class="videos">{"".join(cards)}</div>'))


def _provenance_section(metadata: dict[str, Any]) -> Section:
    shown = dict(metadata)
    identity = dict(shown.pop("identity", {}) or {})
    identity.pop("tasks", None)  # the task table is the table above
    return Section("provenance", "Protocol and provenance",
                   key_value_table({**shown, "identity": identity}, "provenance-table"))


def results_html(results: dict[str, Any], title: str, out_dir: Path, records: Sequence[EpisodeRecord]) -> str:
    """The page for results.json's content `results`; `records` (the run's episodes) name its videos."""
    meta = results["metadata"]
    subtitle = [f"{meta.get('protocol', {}).get('suite', '')} \u00b7 evaluation seed {meta.get('seed')} "
                f"\u00b7 finished {meta.get('finished_at', 'n/a')} \u00b7 git {meta.get('git_commit')}"]
    sections = [_summary_section(results), _task_section(results),
                _video_section(Path(out_dir), records, list(results["tasks"])), _provenance_section(meta)]
    return page(title, sections, subtitle)


def write_results_html(out_dir: Path, results: dict[str, Any], title: str,
                       records: Sequence[EpisodeRecord]) -> Path:
    """Write results.html into `out_dir` (beside results.json and videos/); returns its path."""
    path = write_text(Path(out_dir) / HTML_NAME, results_html(results, title, Path(out_dir), records))
    logger.info("wrote %s", path)
    return path
