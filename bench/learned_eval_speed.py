"""Evaluation speed of a learned policy against the scripted experts, side by side in one run.

    python -m bench.learned_eval_speed --checkpoint outputs/train/mt10_state/checkpoints/last
    python -m bench.learned_eval_speed --checkpoint ... --suite metaworld_mt50 --episodes 10

Both run `eval.py`'s evaluation (`workflows.evaluate.evaluate`) on the same suite and protocol with the same
rollout settings (2 workers, no videos); the learned policy acts in the engine process (batched over the
waiting slots, `rollout.policy_threads` torch threads), the experts in the workers. Env steps/s over the
whole run, set-up included. Writes bench/results/learned_eval_speed.json.
"""

from __future__ import annotations

import argparse

from bench.common import save, timed_evaluation
from envs.config import EnvConfig
from envs.rollout import RolloutConfig
from workflows.evaluate import EvalConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a checkpoint folder (model.safetensors + JSON)")
    parser.add_argument("--suite", default="metaworld_mt10")
    parser.add_argument("--episodes", type=int, default=None, help="episodes per task (default: the official protocol)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    def config(checkpoint: str | None) -> EvalConfig:
        return EvalConfig(env=EnvConfig(suite=args.suite), checkpoint=checkpoint, episodes_per_task=args.episodes,
                          rollout=RolloutConfig(num_workers=args.workers, videos_per_task=0))

    experts = timed_evaluation(config(None))
    learned = timed_evaluation(config(args.checkpoint))
    ratio = round(learned["steps_per_s"] / experts["steps_per_s"], 2)
    for name, run in (("experts", experts), ("learned", learned)):
        print(f"  {name:8s} {run['wall_s']:7.1f} s  {run['episodes']:5d} episodes  {run['env_steps']:7d} env steps  "
              f"{run['steps_per_s']:7.1f} steps/s  success {run['mean_success']}")
    if "policy_s" in learned:
        print(f"  policy calls: {learned['policy_calls']} of {learned['rows_per_call']} rows on average, "
              f"{learned['policy_s']} s in all ({learned['policy_us_per_step']} us per env step)")
    print(f"learned policy: {ratio}x the experts' env steps/s")
    save("learned_eval_speed", {"suite": args.suite, "checkpoint": args.checkpoint, "workers": args.workers,
                                "experts": experts, "learned": learned, "ratio": ratio})


if __name__ == "__main__":
    main()
