"""Demonstration collection rate with the scripted experts (state only, successful demos kept).

    python -m bench.collect_rate                               # MT10 x 50 demos, 1 and 2 workers; MT50 x 50, 2 workers
    python -m bench.collect_rate --suites metaworld_mt10 --workers 2 --episodes 10

Times `collect.collect` from the start to the last file written (worker start-up included) into
a temporary folder, and writes bench/results/collect_rate.json.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time

import h5py

from bench.common import save
from envs.config import EnvConfig
from envs.rollout import RolloutConfig
from workflows.collect import CollectConfig, collect


def measure(suite: str, workers: int, episodes: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as out:
        cfg = CollectConfig(env=EnvConfig(suite=suite, goal_set="random"), episodes_per_task=episodes, out_dir=out,
                            rollout=RolloutConfig(num_workers=workers, videos_per_task=0), progress=False)
        start = time.perf_counter()
        files = collect(cfg)
        wall = time.perf_counter() - start
        demos = steps = 0
        for path in files.values():
            with h5py.File(path, "r") as file:
                demos += len(file["data"])
                steps += int(file["data"].attrs["total"])
    return {"suite": suite, "workers": workers, "demos_per_task": episodes, "tasks": len(files), "demos": demos,
            "demo_steps": steps, "wall_s": round(wall, 1), "demos_per_min": round(60 * demos / wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suites", nargs="+", default=["metaworld_mt10", "metaworld_mt50"])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--episodes", type=int, default=50, help="demos per task")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    runs = []
    for suite in args.suites:
        for workers in args.workers if suite == args.suites[0] else args.workers[-1:]:
            run = measure(suite, workers, args.episodes)
            print(f"{suite} x {args.episodes} demos, {workers} worker(s): {run['wall_s']} s, "
                  f"{run['demos_per_min']} demos/min ({run['demos']} demos, {run['demo_steps']} steps)")
            runs.append(run)
    save("collect_rate", {"policy": "expert", "keep": "success", "observations": "state", "runs": runs})


if __name__ == "__main__":
    main()
