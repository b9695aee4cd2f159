"""Environment steps/s of the evaluation engine on MT10 with the scripted experts.

    python -m bench.eval_throughput                 # 1 and 2 workers, 5 episodes per task
    python -m bench.eval_throughput --episodes 50 --workers 1 2 --envs-per-worker 8 --pipeline-groups 2

State only, no videos. Counts every env step the workers execute, over the wall time of the
whole run (worker start-up included) and in steady state (between the 10th and 90th percent of
finished episodes), and writes bench/results/eval_throughput.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.common import save
from envs.config import EnvConfig
from envs.registry import make_suite
from envs.rollout import EpisodeRequest, RolloutConfig, RolloutEngine


def measure(workers: int, envs_per_worker: int, episodes: int, groups: int) -> dict[str, float]:
    suite = make_suite(EnvConfig(suite="metaworld_mt10"))
    policy = suite.make_expert()
    requests = [EpisodeRequest(t, e) for t in suite.tasks for e in range(episodes)]
    config = RolloutConfig(num_workers=workers, envs_per_worker=envs_per_worker, pipeline_groups=groups,
                           videos_per_task=0)
    records, marks = [], []  # marks: (time, env steps) when each episode finished

    def on_record(record) -> None:
        records.append(record)
        marks.append((time.perf_counter(), engine.env_steps))

    with tempfile.TemporaryDirectory() as out:
        engine = RolloutEngine(suite, config, policy, Path(out), progress=False)
        start, cpu_start = time.perf_counter(), time.process_time()
        engine.run(requests, on_record=on_record)
        wall, main_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    # Steady state: between the 10th and the 90th percent of finished episodes, which leaves out
    # the workers' start (imports, first env builds) and the tail where slots run dry.
    (t0, s0), (t1, s1) = marks[len(marks) // 10], marks[len(marks) * 9 // 10]
    return {"workers": workers, "envs_per_worker": envs_per_worker, "pipeline_groups": groups,
            "episodes": len(records), "env_steps": engine.env_steps, "wall_s": round(wall, 2),
            "steps_per_s": round(engine.env_steps / wall, 1),
            "steady_steps_per_s": round((s1 - s0) / (t1 - t0), 1),
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
              f"(steady state {run['steady_steps_per_s']:.0f}) "
              f"({run['env_steps']} steps, {run['episodes']} episodes, {run['wall_s']} s, "
              f"engine process CPU {run['main_process_cpu_s']} s)")
        runs.append(run)
    figures = {"suite": "metaworld_mt10", "policy": "expert", "runs": runs}
    if len(runs) >= 2:
        figures["speedup"] = round(runs[-1]["steps_per_s"] / runs[0]["steps_per_s"], 2)
        figures["steady_speedup"] = round(runs[-1]["steady_steps_per_s"] / runs[0]["steady_steps_per_s"], 2)
        print(f"speed-up {runs[-1]['workers']} vs {runs[0]['workers']} workers: {figures['speedup']}x whole run, "
              f"{figures['steady_speedup']}x steady state")
    save("eval_throughput", figures)


if __name__ == "__main__":
    main()
