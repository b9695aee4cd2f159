"""compare.html: a comparison of methods as one static page: the methods and their paired differences with
the baseline, per-task success bars with intervals side by side, training curves from TensorBoard, and the
first rollout video of each task per method (copied beside the page, so the folder travels whole).

    html = compare_html(comparison, runs, videos, "MT10: multitask methods")
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from common.html_report import Raw, Section, key_value_table, page, table, video
from common.svg_charts import BarSeries, LineSeries, color, interval_bars, line_chart, nice_ticks
from workflows.compare.report import (
    DIFFERENCE_HEADERS,
    METHOD_HEADERS,
    READING,
    ci_text,
    difference_rows,
    method_rows,
    signed,
)
from workflows.compare.runs import Run

# (method, task) -> (path relative to the page, seed, success)
VideoIndex = dict[tuple[str, str], tuple[str, int, bool]]
MAIN_CURVES = (("train/loss", True, "train/loss"), ("eval/success_rate", False, "eval/success_rate"))


def _colors(comparison: dict[str, Any]) -> dict[str, str]:
    return {name: color(i) for i, name in enumerate(comparison["methods"])}


def _summary(comparison: dict[str, Any]) -> Section:
    body = table(METHOD_HEADERS, method_rows(comparison), "methods-table", numeric=(2, 4, 6))
    if comparison["comparisons"]:
        rows = difference_rows(comparison)
        for row, c in zip(rows, comparison["comparisons"].values()):
            css = {"higher": "higher", "lower": "lower"}.get(c.get("verdict"), "same")
            row[-1] = Raw(f'<span class="{css}">{escape(str(row[-1]))}</span>')
        body += (f"<h3>Paired differences against {comparison['baseline']}</h3>"
                 + table(DIFFERENCE_HEADERS, rows, "differences-table", numeric=(1, 3, 4, 5)))
        paired = {n: c for n, c in comparison["comparisons"].items() if c["paired"]}
        if paired:
            colors = _colors(comparison)
            body += interval_bars(list(paired), [BarSeries("difference", [c["estimate"] for c in paired.values()],
                                                           [tuple(c["ci"]) for c in paired.values()],
                                                           bar_colors=[colors[n] for n in paired])],
                                  "difference in mean success", domain=_symmetric(paired.values()),
                                  axis_label=f"mean success minus {comparison['baseline']}'s")
    return Section("summary", "Methods", body + f'<p class="note">{READING}</p>')


def _symmetric(comparisons: Sequence[dict[str, Any]]) -> tuple[float, float]:
    """A domain around 0 that holds every interval, with round ends."""
    reach = max([abs(x) for c in comparisons if c.get("ci") for x in c["ci"]] + [0.05])
    edge = nice_ticks(0, min(1.0, reach * 1.1), 4)[-1]
    return (-edge, edge)


def _tasks(comparison: dict[str, Any]) -> Section:
    methods, tasks, colors = comparison["methods"], comparison["tasks"], _colors(comparison)
    categories = ["mean of tasks", *tasks]
    series = [BarSeries(name, [m["mean_success"]] + [m["tasks"][t]["success_rate"] for t in tasks],
                        [tuple(m["ci"])] + [tuple(m["tasks"][t]["ci"]) if m["tasks"][t]["episodes"] else None
                                            for t in tasks], colors[name]) for name, m in methods.items()]
    body = interval_bars(categories, series, "success per task")
    body += ('<p class="note">Bars: success rate, episodes pooled over seeds; whiskers: Wilson 95% intervals '
             "(the first row: mean over seeds and tasks, bootstrap interval).</p>")
    rows = [[t, *(f"{m['tasks'][t]['success_rate']:.2f} {ci_text(m['tasks'][t]['ci'])}"
                  if m["tasks"][t]["success_rate"] is not None else "n/a" for m in methods.values())] for t in tasks]
    body += table(["task", *methods], rows, "tasks-table")
    paired = {n: c for n, c in comparison["comparisons"].items() if c["paired"]}
    if paired:
        diff = [BarSeries(n, [c["tasks"][t]["estimate"] for t in tasks],
                          [tuple(c["tasks"][t]["ci"]) if c["tasks"][t]["ci"] else None for t in tasks], colors[n])
                for n, c in paired.items()]
        domain = _symmetric([task for c in paired.values() for task in c["tasks"].values()])
        body += (f"<h3>Paired differences per task against {comparison['baseline']}</h3>"
                 + interval_bars(tasks, diff, "difference per task", domain=domain,
                                 axis_label=f"success minus {comparison['baseline']}'s")
                 + table(["task", *paired], [[t, *(f"{signed(c['tasks'][t]['estimate'])} "
                                                   f"{ci_text(c['tasks'][t]['ci'], sign=True)}"
                                                   for c in paired.values())] for t in tasks],
                         "task-differences-table")
                 + '<p class="note">Per task the interval resamples seeds and episodes; with many tasks a few '
                   "intervals miss 0 by chance alone: read them as where to look, the suite difference as the "
                   "result.</p>")
    return Section("tasks", "Success per task", body)


def _curves(runs: Sequence[Run], tag: str, colors: dict[str, str], log_y: bool, title: str,
            width: int = 460, height: int = 260) -> str | None:
    """One line per run that logged `tag`, coloured by method."""
    series = [LineSeries(f"{r.method}, seed {r.seed}", [s for s, _ in r.tensorboard.scalars[tag]],
                         [v for _, v in r.tensorboard.scalars[tag]], colors[r.method])
              for r in runs if tag in r.tensorboard.scalars]
    if not series:
        return None
    legend = [(m, c) for m, c in colors.items() if any(r.method == m and tag in r.tensorboard.scalars for r in runs)]
    return line_chart(series, title, log_y=log_y, legend=legend, width=width, height=height)


def _training(comparison: dict[str, Any], runs: Sequence[Run]) -> Section:
    colors = _colors(comparison)
    tags = sorted({tag for r in runs for tag in r.tensorboard.scalars})
    main = [c for tag, log_y, title in MAIN_CURVES if (c := _curves(runs, tag, colors, log_y, title))]
    if not tags:
        return Section("training", "Training", '<p class="note">No TensorBoard logs in these runs (evaluation '
                                               "folders, or training without logs).</p>")
    body = f'<div class="charts">{"".join(main)}</div>'
    body += ('<p class="note">From the runs\' TensorBoard logs: one line per run (colour: method); losses on a log '
             "scale; success during training is measured on fewer episodes than the final evaluation.</p>")
    for prefix, log_y, title in (("train/loss/", True, "Training loss"), ("eval/success_rate/", False, "Success")):
        per_task = [c for tag in tags if tag.startswith(prefix)
                    if (c := _curves(runs, tag, colors, log_y, tag[len(prefix):], 340, 220))]
        if per_task:
            body += f'<h3>{title} per task ({prefix}&lt;task&gt;)</h3><div class="charts">{"".join(per_task)}</div>'
    shown = {t for t, _, _ in MAIN_CURVES} | {t for t in tags if t.startswith(("train/loss/", "eval/success_rate/"))}
    others = [c for tag in tags if tag not in shown if (c := _curves(runs, tag, colors, False, tag, 340, 220))]
    if others:
        body += f'<details><summary>Other scalars ({len(others)})</summary><div class="charts">{"".join(others)}' \
                "</div></details>"
    return Section("training", "Training", body)


def _videos(comparison: dict[str, Any], videos: VideoIndex) -> Section:
    methods = list(comparison["methods"])
    if not videos:
        return Section("videos", "Videos", '<p class="note">No videos in these runs.</p>')
    rows = []
    for task in comparison["tasks"]:
        row: list[Any] = [task]
        for method in methods:
            if (method, task) in videos:
                src, seed, success = videos[(method, task)]
                outcome = "success" if success else "failure"
                row.append(Raw(f'{video(src, f"{method} {task}")}<span class="{outcome}">seed {seed}: {outcome}'
                               "</span>"))
            else:
                row.append("no video")
        rows.append(row)
    note = '<p class="note">The first recorded episode of each task, from the lowest seed of each method.</p>'
    return Section("videos", "Videos", note + table(["task", *methods], rows, "videos-table", css_class="videos-by-task"))


def _runs(comparison: dict[str, Any]) -> Section:
    rows = [[r["method"], r["seed"], Raw(f"<code>{escape(r['path'])}</code>"), r["episodes"],
             "n/a" if r["mean_success"] is None else f"{r['mean_success']:.3f}",
             {True: "yes", False: "no"}.get(r["complete"], "?"), r["git_commit"] or "n/a", r["finished_at"] or "n/a"]
            for r in comparison["runs"]]
    body = table(["method", "seed", "folder", "episodes", "mean success", "complete", "git commit", "finished"],
                 rows, "runs-table", numeric=(1, 3, 4))
    if comparison["warnings"]:
        body = "".join(f'<p class="warn">{escape(w)}</p>' for w in comparison["warnings"]) + body
    body += "<h3>Protocol and statistics</h3>" + key_value_table(
        {"protocol": comparison["protocol"], "evaluation_seed": comparison["evaluation_seed"],
         "statistics": comparison["statistics"], "provenance": comparison.get("metadata", {})}, "protocol-table")
    return Section("runs", "Runs and provenance", body)


def compare_html(comparison: dict[str, Any], runs: Sequence[Run], videos: VideoIndex, title: str) -> str:
    methods = comparison["methods"]
    subtitle = [f"{comparison['protocol'].get('suite')} \u00b7 {len(comparison['tasks'])} tasks \u00b7 "
                f"{len(methods)} methods \u00b7 {len(runs)} runs \u00b7 baseline {comparison['baseline']}"]
    sections = [_summary(comparison), _tasks(comparison), _training(comparison, runs), _videos(comparison, videos),
                _runs(comparison)]
    return page(title, sections, subtitle)
