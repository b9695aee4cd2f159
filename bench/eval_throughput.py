"""Environment steps/s of the evaluation engine on MT10 with the scripted experts.

    python -m bench.eval_throughput                 # 1 and 2 workers, 5 episodes per task
    python -m bench.eval_throughput --episodes 50 --workers 1 2 --envs-per-worker 8 --pipeline-groups 2

State only, no videos. Counts every env step the workers execute, over the wall time of the
whole run (worker start-up included), and writes bench/results/eval_throughput.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.common import save
from envs.config import EnvConfig
from envs.experts import make_expert
from envs.rollout import EpisodeRequest, RolloutConfig, RolloutEngine
from envs.suites import make_suite


def measure(workers: int, envs_per_worker: int, episodes: int, groups: int) -> dict[str, float]:
    suite = make_suite(EnvConfig(suite="metaworld_mt10"))
    policy = make_expert(suite.family, suite.tasks)
    requests = [EpisodeRequest(t, e) for t in suite.tasks for e in range(episodes)]
    records = []
    with tempfile.TemporaryDirectory() as out:
        engine = RolloutEngine(suite, RolloutConfig(num_workers=workers, envs_per_worker=envs_per_worker,
                                                    pipeline_groups=groups, videos_per_task=0), 1, 1, Path(out), progress=False)
        start, cpu_start = time.perf_counter(), time.process_time()
        engine.run(policy, requests, on_record=records.append)
        wall, main_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return {"workers": workers, "envs_per_worker": envs_per_worker, "pipeline_groups": groups,
            "episodes": len(records),
            "env_steps": engine.env_steps, "wall_s": round(wall, 2), "steps_per_s": round(engine.env_steps / wall, 1),
            "main_process_cpu_s": round(main_cpu, 2),
            "success_rate": round(sum(r.success for r in records) / len(records), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--envs-per-worker", type=int, default=8)
    parser.add_argument("--pipeline-groups", type=int, default=2)
    parser.add_argument("--episodes", type=int, default=5, help="episodes per task")
    args = parser.parse_args()
    runs = []
    for workers in args.workers:
        run = measure(workers, args.envs_per_worker, args.episodes, args.pipeline_groups)
        print(f"{workers} worker(s) x {run['envs_per_worker']} envs: {run['steps_per_s']:.0f} env steps/s "
              f"({run['env_steps']} steps, {run['episodes']} episodes, {run['wall_s']} s, "
              f"engine process CPU {run['main_process_cpu_s']} s)")
        runs.append(run)
    figures = {"suite": "metaworld_mt10", "policy": "expert", "runs": runs}
    if len(runs) >= 2:
        figures["speedup"] = round(runs[-1]["steps_per_s"] / runs[0]["steps_per_s"], 2)
        print(f"speed-up {runs[-1]['workers']} vs {runs[0]['workers']} workers: {figures['speedup']}x")
    save("eval_throughput", figures)


if __name__ == "__main__":
    main()
