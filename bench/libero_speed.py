"""LIBERO simulation speed in one worker's shoes: scene build, reset, env steps/s with and without cameras.

    python -m bench.libero_speed                               # libero_object, tasks 0-2
    python -m bench.libero_speed --suite libero_spatial --tasks 3 --steps 300

One process with one BLAS/OpenMP thread, as each evaluation worker runs (`envs.worker.limit_threads`).
For each case the same tasks are built, reset from official init states and stepped with the
scripted expert's actions (realistic motion and contacts); only ``env.reset`` / ``env.step`` are
timed, not the expert. Cases: state only; two 128x128 cameras (agentview, eye_in_hand) with fast
rendering; the same with full-quality rendering. "build" is ``suite.make_env`` (the first build in
the process also imports robosuite and is reported apart). Prints a table and writes
bench/results/libero_speed.json with the machine's facts.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from envs.rendering import select_gl_backend

select_gl_backend()  # before mujoco is imported

import numpy as np  # noqa: E402

from bench.common import save  # noqa: E402
from common.schema import TASK_INDEX  # noqa: E402
from envs.config import EnvConfig  # noqa: E402
from envs.registry import Suite, make_suite  # noqa: E402
from envs.worker import limit_threads  # noqa: E402

CAMERAS = ["agentview", "eye_in_hand"]
CASES = {"state only": {"cameras": []},
         "2 cameras 128x128, fast": {"cameras": CAMERAS, "image_size": 128, "fast_render": True},
         "2 cameras 128x128, full quality": {"cameras": CAMERAS, "image_size": 128, "fast_render": False}}


def run_case(suite: Suite, tasks: int, steps: int) -> dict[str, float]:
    """Build `tasks` envs, reset each from init state 0 and step it `steps` times with the expert."""
    expert = suite.make_expert()
    build_s, reset_s, step_s, stepped = [], [], 0.0, 0
    for task in suite.tasks[:tasks]:
        start = time.perf_counter()
        env = suite.make_env(task)
        build_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        obs, _ = env.reset(seed=0, options={"episode": 0})
        reset_s.append(time.perf_counter() - start)
        window = [obs, obs]
        for _ in range(steps):
            batch = {key: np.stack([o[key] for o in window])[None] for key in obs if key != TASK_INDEX}
            batch[TASK_INDEX] = np.array([task.index])
            action = expert.predict_action_chunk(batch)[0, 0]
            start = time.perf_counter()
            obs, _, terminated, truncated, _ = env.step(action)
            step_s += time.perf_counter() - start
            stepped += 1
            window = [window[-1], obs]
            if terminated or truncated:
                obs, _ = env.reset(seed=1, options={"episode": 1})
                window = [obs, obs]
        env.close()
    return {"first_build_s": round(build_s[0], 2), "build_s": round(float(np.mean(build_s[1:] or build_s)), 2),
            "reset_s": round(float(np.mean(reset_s)), 3), "steps_per_s": round(stepped / step_s, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="libero_object", help="a LIBERO suite name")
    parser.add_argument("--tasks", type=int, default=3, help="tasks built per case (from task 0)")
    parser.add_argument("--steps", type=int, default=200, help="env steps per task")
    args = parser.parse_args()
    limit_threads()
    base = make_suite(EnvConfig(suite=args.suite))
    runs = []
    print(f"{'case':>32} {'1st build s':>11} {'build s':>8} {'reset s':>8} {'steps/s':>8}")
    for name, overrides in CASES.items():
        suite = make_suite(dataclasses.replace(base.config, **overrides))
        figures = run_case(suite, args.tasks, args.steps)
        runs.append({"case": name, **overrides, **figures})
        print(f"{name:>32} {figures['first_build_s']:>11.2f} {figures['build_s']:>8.2f} {figures['reset_s']:>8.3f} "
              f"{figures['steps_per_s']:>8.1f}")
    save("libero_speed", {"suite": args.suite, "tasks": args.tasks, "steps_per_task": args.steps,
                          "threads": 1, "runs": runs})


if __name__ == "__main__":
    main()
