"""Env steps/s of the Ray backend against the local engine on MT10, side by side in one run.

    python -m bench.ray_throughput                                   # experts and a learned policy, 2 vs 2
    python -m bench.ray_throughput --expert-episodes 20 --learned-episodes 2 --workers 2

For each policy the same episodes run with rollout.backend=local (2 worker processes x 8 slots, the engine
process acting) and rollout.backend=ray (2 actors x 8 slots on a local Ray cluster, each acting for its
own slots), one after the other. The learned policy is a random-init diffusion policy of the mt10_state
preset's architecture (UNet (64, 128), task-index and text conditioning, DDIM 10 steps): its inference
costs what a trained one's does; its episodes fail and run the full 500 steps. State only, no videos.
Counts every env step over the whole run (process / actor start included) and in steady state (10th to
90th percent of finished episodes); checks that both backends wrote the same episodes; records the load
average before and after, since other jobs on the machine change every figure.
Writes bench/results/ray_throughput.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import save
from common.threads import limit_openmp_spinning
from envs.config import EnvConfig
from envs.ray_cluster import connect
from envs.registry import Suite, make_suite
from envs.rollout import Backend, EpisodeRequest, RayConfig, RolloutConfig, make_engine
from policies.registry import make_policy
from policies.spec import PolicySpec
from workflows.evaluate import learned_policy, policy_threads


def random_mt10_policy(suite: Suite, rollout: RolloutConfig):
    """A PolicyActor of an untrained diffusion policy with the mt10_state preset's configuration."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    import workflows.train  # noqa: F401  (registers the train schema)

    configs = Path(__file__).resolve().parents[1] / "configs"
    with initialize_config_dir(config_dir=str(configs), version_base="1.3"):
        config = OmegaConf.to_object(compose("train", overrides=["experiment=mt10_state"])).policy
    torch.manual_seed(0)
    policy = make_policy(config, PolicySpec(suite.state_dim, suite.action_dim, list(suite.tasks)))
    stats = {key: {"min": -np.ones(d), "max": np.ones(d), "mean": np.zeros(d), "std": np.ones(d)}
             for key, d in (("obs.state", suite.state_dim), ("action", suite.action_dim))}
    policy.normalizer.fit(stats)
    if config.conditioning.text:
        policy.conditioning.set_text_table(torch.randn(len(suite.tasks), policy.conditioning.text_table.shape[1]))
    return learned_policy(policy, suite, {"random_init": True}, "random_mt10", "cpu", rollout).policy


def measure(suite: Suite, policy, rollout: RolloutConfig, episodes: int) -> tuple[dict, list]:
    requests = [EpisodeRequest(t, e) for t in suite.tasks for e in range(episodes)]
    records, marks = [], []

    def on_record(record) -> None:
        records.append(record)
        marks.append((time.perf_counter(), engine.env_steps))

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as out, policy_threads(rollout.policy_threads):
        engine = make_engine(suite, rollout, policy, Path(out), progress=False)
        start = time.perf_counter()
        engine.run(requests, on_record=on_record)
        wall = time.perf_counter() - start
    (t0, s0), (t1, s1) = marks[len(marks) // 10], marks[len(marks) * 9 // 10]
    figures = {"backend": str(rollout.backend), "workers_or_actors": rollout.num_workers,
               "envs_per_worker": rollout.envs_per_worker, "episodes": len(records), "env_steps": engine.env_steps,
               "wall_s": round(wall, 2), "steps_per_s": round(engine.env_steps / wall, 1),
               "steady_steps_per_s": round((s1 - s0) / (t1 - t0), 1),
               "success_rate": round(sum(r.success for r in records) / len(records), 3),
               "load_average_before": [round(x, 2) for x in load_before],
               "load_average_after": [round(x, 2) for x in os.getloadavg()]}
    return figures, sorted((r.task, r.episode, r.status, r.success, r.length, r.reward) for r in records)


def compare(name: str, suite: Suite, policy, rollout: RolloutConfig, episodes: int) -> dict:
    runs, journals = [], []
    for backend in (Backend.local, Backend.ray):
        figures, journal = measure(suite, policy, dataclasses.replace(rollout, backend=backend), episodes)
        print(f"{name} {backend}: {figures['steps_per_s']:.0f} env steps/s "
              f"(steady {figures['steady_steps_per_s']:.0f}), {figures['episodes']} episodes, {figures['wall_s']} s, "
              f"load {figures['load_average_before']}")
        runs.append(figures)
        journals.append(journal)
    ratio = round(runs[1]["steps_per_s"] / runs[0]["steps_per_s"], 2)
    steady = round(runs[1]["steady_steps_per_s"] / runs[0]["steady_steps_per_s"], 2)
    print(f"{name}: ray / local = {ratio}x whole run, {steady}x steady state; "
          f"same episodes: {journals[0] == journals[1]}")
    return {"policy": name, "episodes_per_task": episodes, "runs": runs, "ray_over_local": ratio,
            "ray_over_local_steady": steady, "same_episodes": journals[0] == journals[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="local workers and Ray actors")
    parser.add_argument("--envs-per-worker", type=int, default=8)
    parser.add_argument("--expert-episodes", type=int, default=20, help="episodes per task with the experts")
    parser.add_argument("--learned-episodes", type=int, default=2, help="episodes per task with the learned policy")
    args = parser.parse_args()
    limit_openmp_spinning()
    suite = make_suite(EnvConfig(suite="metaworld_mt10"))
    rollout = RolloutConfig(num_workers=args.workers, envs_per_worker=args.envs_per_worker, videos_per_task=0,
                            ray=RayConfig(num_actors=args.workers))
    connect(rollout.ray, args.workers)  # the local cluster starts once, outside the timings
    results = [compare("expert", suite, suite.make_expert(), rollout, args.expert_episodes)]
    results.append(compare("random_init_mt10_state_diffusion", suite, random_mt10_policy(suite, rollout), rollout,
                           args.learned_episodes))
    save("ray_throughput", {"suite": "metaworld_mt10", "results": results})


if __name__ == "__main__":
    main()
