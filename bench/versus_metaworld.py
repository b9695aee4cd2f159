"""eval.py against Meta-World's own `metaworld.evaluation.evaluation()`, side by side in one run.

    python -m bench.versus_metaworld                     # MT50, the scripted experts, 50 episodes per task
    python -m bench.versus_metaworld --suite MT10 --episodes 10

Meta-World's harness: `gym.make_vec("Meta-World/MT50", vector_strategy="async")`, one env process per task
(gymnasium's AsyncVectorEnv) stepped in lockstep until every task has its episodes, the experts acting in the
main process. This suite's: `workflows.evaluate.evaluate` with 2 worker processes (the experts run in the
workers). Both include their set-up in the wall time. Env steps are counted on both sides (Meta-World's
harness steps every env each iteration, and throws away the episodes past the 50th of a task). Prints and
writes bench/results/versus_metaworld.json: wall time and env steps/s of each, and the ratios.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.common import save, timed_evaluation
from envs.config import EnvConfig
from envs.rollout import RolloutConfig
from workflows.evaluate import EvalConfig

SUITES = {"MT10": "metaworld_mt10", "MT50": "metaworld_mt50"}


class ExpertAgent:
    """`metaworld.evaluation.Agent` for the scripted experts: env i of the vector env runs task i's expert."""

    def __init__(self, task_names: list[str]):
        from metaworld.policies import ENV_POLICY_MAP

        self.experts = [ENV_POLICY_MAP[name]() for name in task_names]

    def eval_action(self, observations: np.ndarray) -> np.ndarray:
        return np.stack([np.clip(expert.get_action(obs[:39]), -1, 1) for expert, obs in
                         zip(self.experts, observations, strict=True)]).astype(np.float32)

    def reset(self, dones: np.ndarray) -> None:
        pass


def metaworld_harness(suite: str, episodes: int) -> dict[str, float]:
    import gymnasium as gym
    import metaworld  # noqa: F401  (registers the Meta-World/* envs)
    from metaworld.evaluation import evaluation

    started = time.perf_counter()
    envs = gym.make_vec(f"Meta-World/{suite}", vector_strategy="async", seed=0)
    agent, steps = ExpertAgent(_task_names(suite)), [0]
    step = envs.step

    def counting_step(actions):
        steps[0] += envs.num_envs
        return step(actions)

    envs.step = counting_step
    mean_success, _, _, _ = evaluation(agent, envs, num_episodes=episodes)
    envs.close()
    wall = time.perf_counter() - started
    return {"wall_s": round(wall, 1), "env_steps": steps[0], "steps_per_s": round(steps[0] / wall, 1),
            "mean_success": round(float(mean_success), 4)}


def _task_names(suite: str) -> list[str]:
    """The tasks in the order `make_mt_envs` builds the vector env's envs (the benchmark's classes)."""
    from metaworld.env_dict import MT10_V3, MT50_V3

    return list(MT10_V3 if suite == "MT10" else MT50_V3)


def this_suite(suite: str, episodes: int, workers: int) -> dict[str, float]:
    return timed_evaluation(EvalConfig(env=EnvConfig(suite=SUITES[suite]), episodes_per_task=episodes,
                                       rollout=RolloutConfig(num_workers=workers, videos_per_task=0)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", choices=sorted(SUITES), default="MT50")
    parser.add_argument("--episodes", type=int, default=50, help="episodes per task")
    parser.add_argument("--workers", type=int, default=2, help="this suite's worker processes")
    args = parser.parse_args()
    ours = this_suite(args.suite, args.episodes, args.workers)
    theirs = metaworld_harness(args.suite, args.episodes)
    ratios = {"whole_run": round(theirs["wall_s"] / ours["wall_s"], 2),
              "per_env_step": round(ours["steps_per_s"] / theirs["steps_per_s"], 2)}
    print(f"{args.suite}, experts, {args.episodes} episodes per task")
    print(f"  eval.py ({args.workers} workers): {ours['wall_s']:7.1f} s  {ours['env_steps']:8d} env steps  "
          f"{ours['steps_per_s']:7.1f} steps/s  success {ours['mean_success']}")
    print(f"  metaworld evaluation():  {theirs['wall_s']:7.1f} s  {theirs['env_steps']:8d} env steps  "
          f"{theirs['steps_per_s']:7.1f} steps/s  success {theirs['mean_success']}")
    print(f"  eval.py is {ratios['whole_run']}x faster over the whole run, {ratios['per_env_step']}x per env step")
    save("versus_metaworld", {"suite": args.suite, "episodes_per_task": args.episodes, "workers": args.workers,
                              "eval_py": ours, "metaworld_evaluation": theirs, "ratios": ratios})


if __name__ == "__main__":
    main()
