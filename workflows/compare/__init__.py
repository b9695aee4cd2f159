"""Compare multitask methods over their training runs, with error bars: which method beats the baseline, by
how much, and whether the difference is more than chance.

    python -m workflows.compare outputs/train/mt10_* --baseline sum --out outputs/compare/mt10
    python -m workflows.compare multirun/2026-01-01/12-00-00 --baseline sum          # a hydra sweep folder
    python -m workflows.compare runA runB --label '*runA*=sum' --label '*runB*=pcgrad' --baseline sum
    python -m workflows.compare outputs/train/* --method-key policy.name --baseline diffusion

Each run's method is its config.yaml's `trainer.multitask.method` (or the --method-key keys, or a --label
pattern on its path) and its seed `trainer.seed`; its episodes come from final_eval/episodes.jsonl. Writes into
--out: compare.json, compare.md (also printed), compare.html and videos/<method>/ (the first video of each
task per method, copied so the folder can be moved or shared whole). docs/compare.md explains the statistics.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.atomic import ensure_folder, write_bytes, write_text
from common.provenance import provenance
from workflows.compare.html import VideoIndex, compare_html
from workflows.compare.report import StatsOptions, build_comparison, format_markdown
from workflows.compare.runs import LabelOptions, Run, find_run_folders, load_runs

log = logging.getLogger("compare")


@dataclass
class CompareConfig:
    runs: list[str]  # run folders, globs of them, or folders holding runs
    out_dir: str = "outputs/compare"
    baseline: str | None = None  # required when there are two methods or more
    labels: LabelOptions = field(default_factory=LabelOptions)
    stats: StatsOptions = field(default_factory=StatsOptions)
    title: str | None = None


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "method"


def copy_videos(runs: list[Run], out_dir: Path) -> VideoIndex:
    """Copy the first video of each task of each method (its lowest seed that has one) under out_dir/videos/."""
    index: VideoIndex = {}
    folders: dict[str, str] = {}
    for run in sorted(runs, key=lambda r: (r.method, r.seed)):
        folder = folders.setdefault(run.method, _slug(run.method) + ("" if _slug(run.method) not in folders.values()
                                                                      else f"_{len(folders)}"))
        for task, (source, success) in run.videos.items():
            if (run.method, task) not in index:
                target = out_dir / "videos" / folder / source.name
                write_bytes(target, source.read_bytes())
                index[(run.method, task)] = (target.relative_to(out_dir).as_posix(), run.seed, success)
    return index


def compare(cfg: CompareConfig) -> dict[str, Any]:
    """Read the runs, compute the statistics and write the report files; returns compare.json's content.

    Raises:
        FileNotFoundError: a run argument that names no run.
        ValueError: runs that cannot be compared (method or seed unknown, two runs with one method and seed,
            different protocols or tasks, no baseline among several methods).
    """
    runs = load_runs(find_run_folders(cfg.runs), cfg.labels)
    methods = sorted({r.method for r in runs})
    if cfg.stats.baseline is None and len(methods) > 1:
        raise ValueError(f"name the baseline with --baseline; the methods found: {methods}")
    comparison = build_comparison(runs, cfg.stats)
    comparison["metadata"] = provenance()
    title = cfg.title or f"{comparison['protocol'].get('suite')}: {', '.join(methods)}"
    out_dir = ensure_folder(cfg.out_dir, "--out")
    videos = copy_videos(runs, out_dir)
    write_text(out_dir / "compare.json", json.dumps(comparison, indent=2) + "\n")
    markdown = format_markdown(comparison, title)
    write_text(out_dir / "compare.md", markdown)
    write_text(out_dir / "compare.html", compare_html(comparison, runs, videos, title))
    print(markdown)
    print(f"report: {out_dir / 'compare.html'}")
    return comparison
