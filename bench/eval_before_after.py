"""One `eval.py` command at an earlier commit and at this checkout, one after the other: wall time and env steps/s.

    python -m bench.eval_before_after                  # LIBERO-Object experts, state only, official protocol
    python -m bench.eval_before_after --before 56d8970 -- env=metaworld_mt50 rollout.num_workers=2

The earlier commit is checked out into a temporary git worktree (removed afterwards) and its own `eval.py`
runs there, so "before" is the code as it was, not a flag of today's. Both runs get the same overrides plus
their own `out_dir`; wall time is the whole command (interpreter start, worker start, scene builds
included). Env steps come from each run's episodes.jsonl. The default `--before` is the commit this round
of the engine's work started from. Prints a table and writes bench/results/eval_before_after.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import journal_records, save

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OVERRIDES = ["env=libero_object", "rollout.num_workers=2", "rollout.envs_per_worker=4",
                     "rollout.videos_per_task=0"]


def timed_eval(checkout: Path, overrides: list[str], out_dir: Path) -> dict[str, float]:
    """Run `python eval.py` in `checkout` with `overrides`; wall time, episodes, env steps, mean success."""
    env = dict(os.environ, PYTHONPATH=str(checkout))
    started = time.perf_counter()
    subprocess.run([sys.executable, "eval.py", *overrides, f"out_dir={out_dir}"], cwd=checkout, env=env,
                   check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    episodes = journal_records(out_dir)
    steps = sum(record["length"] for record in episodes)
    results = json.loads((out_dir / "results.json").read_text())
    return {"wall_s": round(wall, 1), "episodes": len(episodes), "env_steps": steps,
            "steps_per_s": round(steps / wall, 1), "mean_success": results["suite"]["mean_success"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default="56d8970", help="the earlier commit (default: this round's start)")
    parser.add_argument("overrides", nargs="*", help=f"eval.py overrides (default: {' '.join(DEFAULT_OVERRIDES)})")
    args = parser.parse_args()
    overrides = args.overrides or DEFAULT_OVERRIDES
    with tempfile.TemporaryDirectory() as tmp:
        worktree = Path(tmp) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(worktree), args.before], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            before = timed_eval(worktree, overrides, Path(tmp) / "out_before")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, check=True)
        after = timed_eval(ROOT, overrides, Path(tmp) / "out_after")
    speedup = round(before["wall_s"] / after["wall_s"], 2)
    print(f"python eval.py {' '.join(overrides)}")
    for name, run in ((f"before ({args.before})", before), ("after (this checkout)", after)):
        print(f"  {name:24s} {run['wall_s']:7.1f} s  {run['episodes']:5d} episodes  {run['env_steps']:7d} env steps  "
              f"{run['steps_per_s']:6.1f} steps/s  success {run['mean_success']}")
    print(f"  {speedup}x faster over the whole command")
    save("eval_before_after", {"overrides": overrides, "before_commit": args.before, "before": before,
                               "after": after, "whole_run_speedup": speedup})


if __name__ == "__main__":
    main()
