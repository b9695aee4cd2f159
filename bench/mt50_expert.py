"""The scripted experts on MT50 under the official protocol (2,500 episodes), timed.

    python -m bench.mt50_expert                      # 2 workers, no videos
    python -m bench.mt50_expert --workers 2 --episodes 10   # a quicker look

Writes bench/results/mt50_expert.json: wall time, mean success with its interval, and every
task below 0.90. The evaluation's own files land in outputs/bench/mt50_expert (resumable).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench.common import save
from envs.config import EnvConfig
from envs.rollout import RolloutConfig
from workflows.evaluate import EvalConfig, evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--envs-per-worker", type=int, default=4)
    parser.add_argument("--episodes", type=int, default=None, help="episodes per task (default: official 50)")
    parser.add_argument("--out-dir", default="outputs/bench/mt50_expert")
    args = parser.parse_args()
    # Time a whole run, not a resumed one: drop the resume journal (nothing else is deleted).
    (Path(args.out_dir) / "episodes.jsonl").unlink(missing_ok=True)
    cfg = EvalConfig(env=EnvConfig(suite="metaworld_mt50"), episodes_per_task=args.episodes, out_dir=args.out_dir,
                     rollout=RolloutConfig(num_workers=args.workers, envs_per_worker=args.envs_per_worker,
                                           videos_per_task=0))
    start = time.perf_counter()
    results = evaluate(cfg)
    wall = time.perf_counter() - start
    below = {name: task["success_rate"] for name, task in results["tasks"].items() if task["success_rate"] < 0.9}
    figures = {"workers": args.workers, "envs_per_worker": args.envs_per_worker,
               "episodes": results["suite"]["episodes"], "wall_s": round(wall, 1),
               "mean_success": results["suite"]["mean_success"], "ci95": results["suite"]["ci95"],
               "errors": results["suite"]["errors"], "unstable": results["suite"]["unstable"],
               "tasks_below_0.90": below, "per_task": {n: t["success_rate"] for n, t in results["tasks"].items()}}
    print(f"MT50 expert: mean success {figures['mean_success']} {figures['ci95']} over "
          f"{figures['episodes']} episodes in {wall / 60:.1f} min; below 0.90: {below}")
    save("mt50_expert", figures)
    print(f"evaluation files: {Path(args.out_dir).resolve()}")


if __name__ == "__main__":
    main()
