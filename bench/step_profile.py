"""Where an env step's time goes, MT10 scripted experts: from a bare Meta-World loop to the whole engine.

    python -m bench.step_profile                      # 3 episodes per task for the loops, 10 for the engine

Measured one after the other in one run, microseconds per env step:
1. bare loop: Meta-World's own env and expert in one process (`sim.step`, `expert.get_action` and the
   resets timed apart, the resets spread over the steps);
2. + this suite's env (TaskEnv: sticky success, instability checks, observation assembly) and wrappers
   (history, action chunks), through a RolloutWorker in this process running whole episodes ("run");
3. the engine with 1 worker process (slots, shared memory, pipes, journal): wall time per step, and the
   engine process's own CPU time per step;
4. the engine with 2 worker processes.
Writes bench/results/step_profile.json; docs/engine.md reads it as a table.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import save
from common.schema import OBS_STATE
from envs.config import EnvConfig
from envs.registry import make_suite
from envs.rollout import EpisodeRequest, RolloutConfig, RolloutEngine
from envs.worker import RolloutWorker, WorkerSpec


def bare_loop(suite, episodes: int) -> dict[str, float]:
    """Meta-World's env (`MetaWorldTaskEnv.sim`) and its expert, nothing else; simulator steps, expert calls
    and resets (`TaskEnv.reset`: the goal variation and Meta-World's reset) timed apart, per env step."""
    expert, sim_s, expert_s, reset_s, steps = suite.make_expert(), 0.0, 0.0, 0.0, 0
    for task in suite.tasks:
        env = suite.make_env(task)
        sim, policy = env.unwrapped.sim, expert.experts[task.index]
        for episode in range(episodes):
            t0 = time.perf_counter()
            obs, _ = env.reset(seed=episode, options={"episode": episode})
            reset_s += time.perf_counter() - t0
            state = obs[OBS_STATE][-1] if obs[OBS_STATE].ndim == 2 else obs[OBS_STATE]
            for _ in range(suite.max_episode_steps):
                t0 = time.perf_counter()
                action = np.clip(policy.get_action(state.astype(np.float64)), -1, 1).astype(np.float32)
                t1 = time.perf_counter()
                state, _, _, _, info = sim.step(action)
                t2 = time.perf_counter()
                expert_s, sim_s, steps = expert_s + t1 - t0, sim_s + t2 - t1, steps + 1
                if info["success"]:
                    break
        env.close()
    per_step = {name: round(1e6 * seconds / steps, 1) for name, seconds in
                (("sim_us", sim_s), ("expert_us", expert_s), ("reset_us", reset_s))}
    return {"env_steps": steps, **per_step, "total_us": round(1e6 * (sim_s + expert_s + reset_s) / steps, 1)}


def worker_in_process(suite, episodes: int) -> dict[str, float]:
    """Whole episodes through a RolloutWorker in this process: this suite's env, wrappers and expert batch."""
    expert = suite.make_expert()
    with tempfile.TemporaryDirectory() as out:
        worker = RolloutWorker(WorkerSpec(suite=suite, n_obs_steps=1, n_action_steps=1, out_dir=Path(out),
                                          record_videos=False, policy=expert, max_idle_envs=len(suite.tasks)))
        for task in suite.tasks:  # build each env once outside the timing, as the engine's slots reuse theirs
            worker.handle(("run", 0, task.name, 0, 0, None))
        steps, started = 0, time.perf_counter()
        for task in suite.tasks:
            for episode in range(episodes):
                steps += worker.handle(("run", 0, task.name, episode, episode, None)).steps
        wall = time.perf_counter() - started
    return {"env_steps": steps, "total_us": round(1e6 * wall / steps, 1)}


def engine(suite, workers: int, episodes: int) -> dict[str, float]:
    config = RolloutConfig(num_workers=workers, videos_per_task=0)
    requests = [EpisodeRequest(t, e) for t in suite.tasks for e in range(episodes)]
    with tempfile.TemporaryDirectory() as out:
        run = RolloutEngine(suite, config, suite.make_expert(), Path(out), progress=False)
        started, cpu = time.perf_counter(), time.process_time()
        run.run(requests, on_record=lambda record: None)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"workers": workers, "env_steps": run.env_steps, "wall_s": round(wall, 2),
            "total_us": round(1e6 * wall / run.env_steps, 1),
            "engine_cpu_us": round(1e6 * cpu / run.env_steps, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=3, help="episodes per task for the in-process loops")
    parser.add_argument("--engine-episodes", type=int, default=10, help="episodes per task for the engine runs")
    args = parser.parse_args()
    suite = make_suite(EnvConfig(suite="metaworld_mt10"))
    figures = {"bare": bare_loop(suite, args.episodes), "worker_in_process": worker_in_process(suite, args.episodes),
               "engine_1_worker": engine(suite, 1, args.engine_episodes),
               "engine_2_workers": engine(suite, 2, args.engine_episodes)}
    bare, worker = figures["bare"], figures["worker_in_process"]
    print(f"bare Meta-World loop:        {bare['total_us']:7.1f} us/step (simulator {bare['sim_us']}, "
          f"expert {bare['expert_us']}, resets {bare['reset_us']})")
    print(f"+ TaskEnv and wrappers:      {worker['total_us']:7.1f} us/step")
    for name in ("engine_1_worker", "engine_2_workers"):
        run = figures[name]
        print(f"engine, {run['workers']} worker(s):         {run['total_us']:7.1f} us/step of wall time "
              f"(engine process CPU {run['engine_cpu_us']} us/step)")
    save("step_profile", {"suite": "metaworld_mt10", "policy": "expert", **figures})


if __name__ == "__main__":
    main()
