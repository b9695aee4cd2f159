"""Wall time of the full LIBERO-90 evaluation (90 tasks x 50 init states) on 1, 10 and 100 nodes of 16 cores,
projected from measured per-episode costs of the scripted experts, state only.

    python -m bench.libero90_projection                        # tasks 0, 30, 60, 89; 3 init states each
    python -m bench.libero90_projection --tasks 0 45 --episodes 2

Measured here, in one process with one compute thread (what an actor is): a scene build per task, then
each episode (reset with the settle steps, expert actions, env steps, up to the official 400 steps), run
by the Ray actor's own code (`envs.ray_actor.EpisodeRunner`) one at a time; and the time a Ray actor takes
to start (process, imports) on a local cluster. The same episodes then run on 2 Ray actors, to check
the model against the engine (actors already started). Projection, one single-slot actor per core
(A = 16 x nodes), the 4,500 episodes in task-major blocks: per actor, start + builds x build +
ceil(4,500 / A) x episode, where builds = the tasks its block touches (at most ceil(block / 50) + 1).
The measured episode mix stands for the whole suite (an episode the expert fails runs the full 400 steps);
an upper bound uses 400-step episodes only.
Writes bench/results/libero90_projection.json.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import tempfile
import time
from pathlib import Path

from envs.rendering import select_gl_backend

select_gl_backend()  # before mujoco is imported

from bench.common import save
from envs.config import EnvConfig
from envs.ray_actor import EpisodeJob, EpisodeRunner
from envs.ray_cluster import connect
from envs.registry import make_suite
from envs.rollout import (
    Backend,
    EpisodeRequest,
    RayConfig,
    RolloutConfig,
    episode_seed,
    make_engine,
    worker_spec,
)
from envs.worker import limit_threads

EPISODES, INIT_STATES, CORES_PER_NODE = 4500, 50, 16


def measure_in_process(suite, requests, out_dir: Path) -> dict:
    """Build and episode times of the Ray actor's code in this process, one episode at a time."""
    limit_threads()
    policy = suite.make_expert()
    runner = EpisodeRunner(worker_spec(suite, RolloutConfig(envs_per_worker=1, videos_per_task=0), policy, out_dir))
    builds, build = [], runner.worker._build_env

    def timed_build(task):
        start = time.perf_counter()
        env = build(task)
        builds.append(time.perf_counter() - start)
        return env

    runner.worker._build_env = timed_build
    episodes = []
    for request in requests:
        job = EpisodeJob(request.task, request.episode, episode_seed(0, request))
        start, built = time.perf_counter(), sum(builds)
        result = asyncio.run(runner.run_episode(job, [policy]))
        episodes.append({"task": request.task.name, "episode": request.episode, "length": result.steps,
                         "success": result.record["success"],
                         "seconds": round(time.perf_counter() - start - (sum(builds) - built), 3)})
    runner.close()
    return {"build_s": builds, "episodes": episodes}


def measure_on_ray(suite, requests, out_dir: Path) -> dict:
    rollout = RolloutConfig(envs_per_worker=1, videos_per_task=0, backend=Backend.ray, ray=RayConfig(num_actors=2))
    connect(rollout.ray, 2)
    policy = suite.make_expert()
    engine = make_engine(suite, rollout, policy, out_dir, progress=False)
    actor_start = engine.wait_ready()
    records = []
    start = time.perf_counter()
    engine.run(requests, on_record=records.append)
    engine.close()
    return {"actor_start_s": round(actor_start, 2), "wall_s": round(time.perf_counter() - start, 2),
            "env_steps": engine.env_steps, "episodes": len(records),
            "errors": sum(r.status == "error" for r in records)}


def project(nodes: int, start_s: float, build_s: float, episode_s: float) -> float:
    actors = nodes * CORES_PER_NODE
    per_actor = math.ceil(EPISODES / actors)
    builds = min(math.ceil(per_actor / INIT_STATES) + 1, per_actor)  # a block may straddle one more task
    return start_s + builds * build_s + per_actor * episode_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[0, 30, 60, 89])
    parser.add_argument("--episodes", type=int, default=3, help="init states per task")
    args = parser.parse_args()
    load_before = os.getloadavg()
    suite = make_suite(EnvConfig(suite="libero_90"))
    requests = [EpisodeRequest(suite.tasks[t], e) for t in args.tasks for e in range(args.episodes)]
    with tempfile.TemporaryDirectory() as folder:
        local = measure_in_process(suite, requests, Path(folder) / "in_process")
        ray_run = measure_on_ray(suite, requests, Path(folder) / "ray")
    episodes = local["episodes"]
    build_s = sum(local["build_s"]) / len(local["build_s"])
    episode_s = sum(e["seconds"] for e in episodes) / len(episodes)
    step_s = sum(e["seconds"] for e in episodes) / sum(e["length"] for e in episodes)
    worst_episode_s = episode_s + (400 - sum(e["length"] for e in episodes) / len(episodes)) * step_s
    predicted_ray = (sum(local["build_s"]) + episode_s * len(episodes)) / 2  # two actors, each half the tasks
    projection = {f"{n}_nodes": {"actors": n * CORES_PER_NODE,
                                 "wall_s": round(project(n, ray_run["actor_start_s"], build_s, episode_s), 1),
                                 "wall_s_all_400_steps": round(project(n, ray_run["actor_start_s"], build_s,
                                                                       worst_episode_s), 1)}
                  for n in (1, 10, 100)}
    figures = {"suite": "libero_90", "policy": "expert", "cameras": [], "tasks": args.tasks,
               "init_states_per_task": args.episodes, "episodes": episodes,
               "build_s": [round(b, 2) for b in local["build_s"]], "mean_build_s": round(build_s, 2),
               "mean_episode_s": round(episode_s, 2), "mean_length": round(sum(e["length"] for e in episodes) /
                                                                           len(episodes), 1),
               "step_s": round(step_s, 5), "ray_2_actors": ray_run,
               "ray_2_actors_predicted_wall_s": round(predicted_ray, 1),
               "projection_4500_episodes_16_cores_per_node": projection,
               "load_average_before": [round(x, 2) for x in load_before],
               "load_average_after": [round(x, 2) for x in os.getloadavg()]}
    for name, row in projection.items():
        print(f"{name}: {row['actors']} actors, {row['wall_s'] / 60:.1f} min "
              f"({row['wall_s_all_400_steps'] / 60:.1f} min if every episode ran 400 steps)")
    print(f"measured: build {build_s:.2f} s, episode {episode_s:.2f} s (mean length {figures['mean_length']}), "
          f"actor start {ray_run['actor_start_s']} s; 2 Ray actors ran {len(episodes)} episodes in "
          f"{ray_run['wall_s']} s (model: {predicted_ray:.1f} s)")
    save("libero90_projection", figures)


if __name__ == "__main__":
    main()
