"""What a comparison says, as data (compare.json) and as markdown (compare.md): per method its success with an
interval over seeds, tasks and episodes, per task its pooled success with a Wilson interval, its training time
and speed; per method against the baseline the paired difference with its interval and p-value.

    comparison = build_comparison(runs, StatsOptions(baseline="sum"))
    text = format_markdown(comparison)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from envs.results import wilson_interval
from workflows.compare.runs import Run
from workflows.compare.stats import (
    BootstrapResult,
    Outcomes,
    difference_cells,
    hierarchical_bootstrap,
    holm,
    rate_cells,
)

VERDICTS = {"higher": "better than the baseline", "lower": "worse than the baseline",
            "no significant difference": "no significant difference"}


@dataclass
class StatsOptions:
    baseline: str | None = None  # the method every other one is compared with (None: no comparisons)
    confidence: float = 0.95
    resamples: int = 10_000  # bootstrap replicates
    seed: int = 0  # of the bootstrap: the same runs give the same report


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def check_comparable(runs: Sequence[Run]) -> None:
    """Raise ValueError unless every run was evaluated on the same tasks, under the same protocol (the number
    of episodes per task may differ: pairs are made of the episodes both ran) and evaluation seed."""
    def key(run: Run) -> dict[str, Any]:
        protocol = {k: v for k, v in run.metadata.get("protocol", {}).items() if k != "episodes_per_task"}
        return {"protocol": protocol, "evaluation seed": run.metadata.get("seed"), "tasks": run.tasks}

    reference = key(runs[0])
    for run in runs[1:]:
        theirs = key(run)
        for field_name in reference:
            if theirs[field_name] != reference[field_name]:
                raise ValueError(f"{run.path} and {runs[0].path} were evaluated with different {field_name} "
                                 f"({theirs[field_name]} vs {reference[field_name]}): their episodes do not pair up")


def _interval(result: BootstrapResult) -> dict[str, Any]:
    return {"estimate": _r(result.estimate), "ci": [_r(result.low), _r(result.high)]}


def method_outcomes(runs: Sequence[Run]) -> Outcomes:
    return {(run.seed, task, episode): success for run in runs for (task, episode), success in run.outcomes.items()}


def _task_table(runs: Sequence[Run], tasks: list[str], confidence: float) -> dict[str, Any]:
    table = {}
    for task in tasks:
        by_seed = {run.seed: [s for (t, _), s in run.outcomes.items() if t == task] for run in runs}
        successes, episodes = sum(sum(v) for v in by_seed.values()), sum(len(v) for v in by_seed.values())
        table[task] = {"successes": successes, "episodes": episodes,
                       "success_rate": _r(successes / episodes) if episodes else None,
                       "ci": [_r(x) for x in wilson_interval(successes, episodes, confidence)],
                       "by_seed": {str(seed): _r(np.mean(v)) if v else None for seed, v in by_seed.items()}}
    return table


def _training(runs: Sequence[Run]) -> dict[str, Any]:
    by_seed = {}
    for run in runs:
        logs = run.tensorboard
        loss = logs.scalars.get("train/loss", [])
        by_seed[str(run.seed)] = {"wall_time_s": _r(logs.wall_time_s, 1),
                                  "samples_per_s": _r(logs.harmonic_mean("train/samples_per_s"), 1),
                                  "steps": loss[-1][0] if loss else None, "final_loss": _r(logs.last("train/loss"), 6)}

    def mean(name: str) -> float | None:
        values = [v[name] for v in by_seed.values() if v[name] is not None]
        return _r(np.mean(values), 1) if values else None

    return {"wall_time_s": mean("wall_time_s"), "samples_per_s": mean("samples_per_s"), "by_seed": by_seed}


def _method(runs: Sequence[Run], tasks: list[str], options: StatsOptions) -> dict[str, Any]:
    outcomes = method_outcomes(runs)
    cells = rate_cells(outcomes, tasks)
    if cells.episodes == 0:
        raise ValueError(f"method {runs[0].method!r} has no finished episodes in {[str(r.path) for r in runs]}")
    mean = hierarchical_bootstrap(cells, options.confidence, options.resamples, options.seed)
    return {"seeds": sorted(run.seed for run in runs), "episodes": len(outcomes), "mean_success": _r(mean.estimate),
            "ci": [_r(mean.low), _r(mean.high)], "tasks": _task_table(runs, tasks, options.confidence),
            "training": _training(runs),
            "errors": sum(run.results["suite"].get("errors", 0) for run in runs),
            "incomplete_seeds": sorted(run.seed for run in runs if run.metadata.get("complete") is False)}


def _comparison(method: Outcomes, baseline: Outcomes, tasks: list[str], options: StatsOptions) -> dict[str, Any]:
    cells = difference_cells(method, baseline, tasks)
    seeds_m, seeds_b = {k[0] for k in method}, {k[0] for k in baseline}
    unpaired = {"method_seeds": sorted(seeds_m - seeds_b), "baseline_seeds": sorted(seeds_b - seeds_m)}
    if cells.episodes == 0:
        return {"paired": False, **unpaired,
                "reason": f"no (seed, task, episode) in common: method seeds {sorted(seeds_m)}, baseline seeds "
                          f"{sorted(seeds_b)}"}
    result = hierarchical_bootstrap(cells, options.confidence, options.resamples, options.seed)
    per_task = {}
    for task in tasks:
        task_cells = cells.task(task)
        if task_cells.episodes:
            r = hierarchical_bootstrap(task_cells, options.confidence, options.resamples, options.seed)
            per_task[task] = {**_interval(r), "pairs": task_cells.episodes}
        else:
            per_task[task] = {"estimate": None, "ci": None, "pairs": 0}
    return {"paired": True, **_interval(result), "p_value": _r(result.p_value, 6), "verdict": result.verdict(),
            "pairs": cells.episodes, "seeds": [s for s, n in zip(cells.seeds, cells.n.sum(axis=1)) if n],
            **unpaired, "tasks": per_task}


def build_comparison(runs: Sequence[Run], options: StatsOptions) -> dict[str, Any]:
    """compare.json's content (without provenance): methods, comparisons with the baseline, runs.

    Raises:
        ValueError: runs that do not pair up (check_comparable), or a baseline no run has.
    """
    check_comparable(runs)
    by_method: dict[str, list[Run]] = {}  # the baseline first, then by name
    for run in sorted(runs, key=lambda r: (r.method != options.baseline, r.method, r.seed)):
        by_method.setdefault(run.method, []).append(run)
    if options.baseline is not None and options.baseline not in by_method:
        raise ValueError(f"baseline {options.baseline!r} is none of the methods found: {sorted(by_method)}")
    tasks = runs[0].tasks
    methods = {name: _method(group, tasks, options) for name, group in by_method.items()}
    comparisons = {}
    if options.baseline is not None:
        baseline = method_outcomes(by_method[options.baseline])
        comparisons = {name: _comparison(method_outcomes(group), baseline, tasks, options)
                       for name, group in by_method.items() if name != options.baseline}
        paired = [c for c in comparisons.values() if c["paired"]]
        for comparison, adjusted in zip(paired, holm([c["p_value"] for c in paired])):
            comparison["p_holm"] = _r(adjusted, 6)
    protocol = dict(runs[0].metadata.get("protocol", {}))
    counts = sorted({r.metadata.get("protocol", {}).get("episodes_per_task") for r in runs}, key=str)
    protocol["episodes_per_task"] = counts[0] if len(counts) == 1 else counts
    return {"baseline": options.baseline, "tasks": tasks, "protocol": protocol,
            "evaluation_seed": runs[0].metadata.get("seed"), "statistics": asdict(options) | {
                "method": "hierarchical percentile bootstrap over seeds, tasks and episodes (paired for differences)"},
            "methods": methods, "comparisons": comparisons, "runs": [_run_entry(r) for r in runs],
            "warnings": _warnings(runs)}


def _run_entry(run: Run) -> dict[str, Any]:
    return {"path": str(run.path), "method": run.method, "seed": run.seed, "complete": run.metadata.get("complete"),
            "episodes": len(run.outcomes), "mean_success": run.results["suite"].get("mean_success"),
            "git_commit": run.metadata.get("git_commit"), "finished_at": run.metadata.get("finished_at"),
            "weights_sha256": run.metadata.get("identity", {}).get("policy", {}).get("sha256")}


def _warnings(runs: Sequence[Run]) -> list[str]:
    warnings = []
    for run in runs:
        if run.metadata.get("complete") is False:
            warnings.append(f"{run.path}: its evaluation is incomplete ({len(run.outcomes)} episodes)")
        if run.results["suite"].get("errors"):
            warnings.append(f"{run.path}: {run.results['suite']['errors']} episodes ended in an error (left out)")
        warnings += run.tensorboard.problems
    return warnings


# ----------------------------------------------------------------------------- markdown


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def p_text(p: float | None) -> str:
    return "n/a" if p is None else "< 0.001" if p < 0.001 else f"{p:.3f}"


def signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.3f}"


def ci_text(ci: Sequence[float] | None, sign: bool = False) -> str:
    if ci is None:
        return "n/a"
    return f"[{ci[0]:+.3f}, {ci[1]:+.3f}]" if sign else f"[{ci[0]:.2f}, {ci[1]:.2f}]"


def verdict_text(name: str, comparison: dict[str, Any]) -> str:
    if not comparison["paired"]:
        return f"not paired: {comparison['reason']}"
    return f"{name}: {VERDICTS[comparison['verdict']]}"


def _md_table(headers: list[str], rows: list[list[Any]], right: Sequence[int] = ()) -> list[str]:
    align = ["---:" if i in right else "---" for i in range(len(headers))]
    return ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|",
            *("| " + " | ".join(str(c) for c in row) + " |" for row in rows), ""]


def method_rows(comparison: dict[str, Any]) -> list[list[Any]]:
    return [[name, ", ".join(map(str, m["seeds"])), f"{m['mean_success']:.3f}", ci_text(m["ci"]), m["episodes"],
             duration(m["training"]["wall_time_s"]),
             "n/a" if m["training"]["samples_per_s"] is None else f"{m['training']['samples_per_s']:.0f}"]
            for name, m in comparison["methods"].items()]


def difference_rows(comparison: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for name, c in comparison["comparisons"].items():
        if c["paired"]:
            rows.append([name, signed(c["estimate"]), ci_text(c["ci"], sign=True), p_text(c["p_value"]),
                         p_text(c.get("p_holm")), c["pairs"], ", ".join(map(str, c["seeds"])),
                         VERDICTS[c["verdict"]]])
        else:
            rows.append([name, "n/a", "n/a", "n/a", "n/a", 0, "", f"not paired: {c['reason']}"])
    return rows


METHOD_HEADERS = ["method", "seeds", "mean success", "95% CI", "episodes", "training time", "samples/s"]
DIFFERENCE_HEADERS = ["method", "difference", "95% CI", "p", "p (Holm)", "pairs", "seeds", "verdict"]
READING = ("Mean success: mean over seeds and tasks of the task success rates; interval: percentile bootstrap "
           "resampling seeds, tasks and episodes. Difference: method minus baseline on the (seed, task, episode) "
           "both ran (the same goal under the same evaluation seed), tasks weighted equally; interval and "
           "two-sided p-value from the paired bootstrap of the same kind. The interval excludes 0 when p < 0.05 "
           "(both read off one bootstrap distribution): only then is one method said to be better or worse. p (Holm) adjusts for comparing several methods "
           "with one baseline. Per task: episodes pooled over seeds, Wilson interval. See docs/compare.md.")


def format_markdown(comparison: dict[str, Any], title: str) -> str:
    protocol = comparison["protocol"]
    lines = [f"# {title}", "", f"Suite {protocol.get('suite')}, {len(comparison['tasks'])} tasks, episodes per task "
             f"{protocol.get('episodes_per_task')}, evaluation seed {comparison['evaluation_seed']}; baseline: "
             f"{comparison['baseline']}.", "", "## Methods", ""]
    lines += _md_table(METHOD_HEADERS, method_rows(comparison), right=(2, 4, 6))
    if comparison["comparisons"]:
        lines += [f"## Paired differences against {comparison['baseline']}", ""]
        lines += _md_table(DIFFERENCE_HEADERS, difference_rows(comparison), right=(1, 3, 4, 5))
    names = list(comparison["methods"])
    lines += ["## Success per task (pooled over seeds, Wilson 95% CI)", ""]
    lines += _md_table(["task", *names], [[task, *(f"{m['tasks'][task]['success_rate']:.2f} "
                                                  f"{ci_text(m['tasks'][task]['ci'])}"
                                                  if m["tasks"][task]["success_rate"] is not None else "n/a"
                                                  for m in comparison["methods"].values())]
                                          for task in comparison["tasks"]])
    paired = {n: c for n, c in comparison["comparisons"].items() if c["paired"]}
    if paired:
        lines += [f"## Paired differences per task against {comparison['baseline']} (95% CI)", ""]
        lines += _md_table(["task", *paired], [[task, *(f"{signed(c['tasks'][task]['estimate'])} "
                                                        f"{ci_text(c['tasks'][task]['ci'], sign=True)}"
                                                        for c in paired.values())] for task in comparison["tasks"]])
    lines += [READING, ""]
    if comparison["warnings"]:
        lines += ["## Warnings", "", *(f"- {w}" for w in comparison["warnings"]), ""]
    return "\n".join(lines)
