"""Evaluation speed of a learned policy against the scripted experts, side by side in one run.

    python -m bench.learned_eval_speed --checkpoint outputs/train/mt10_state/checkpoints/last
    python -m bench.learned_eval_speed --checkpoint ... --suite metaworld_mt50 --episodes 10
    python -m bench.learned_eval_speed --checkpoint ... --envs-per-worker 32 --policy-batch-size 32 \
        --inference-steps 5 --name learned_eval_speed_fast         # the fast settings of docs/engine.md

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
from workflows.evaluate import ActingConfig, EvalConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a checkpoint folder (model.safetensors + JSON)")
    parser.add_argument("--suite", default="metaworld_mt10")
    parser.add_argument("--episodes", type=int, default=None, help="episodes per task (default: the official protocol)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--envs-per-worker", type=int, default=RolloutConfig.envs_per_worker)
    parser.add_argument("--pipeline-groups", type=int, default=RolloutConfig.pipeline_groups)
    parser.add_argument("--policy-batch-size", type=int, default=RolloutConfig.policy_batch_size)
    parser.add_argument("--policy-threads", type=int, default=RolloutConfig.policy_threads)
    parser.add_argument("--n-action-steps", type=int, default=None,
                        help="acting.n_action_steps (default: the checkpoint's)")
    parser.add_argument("--inference-steps", type=int, default=None,
                        help="acting.num_inference_steps (default: the checkpoint's)")
    parser.add_argument("--name", default="learned_eval_speed", help="bench/results/<name>.json")
    parser.add_argument("--skip-experts", action="store_true", help="only the learned policy (no ratio)")
    args = parser.parse_args()
    rollout = RolloutConfig(num_workers=args.workers, envs_per_worker=args.envs_per_worker,
                            pipeline_groups=args.pipeline_groups, policy_batch_size=args.policy_batch_size,
                            policy_threads=args.policy_threads, videos_per_task=0)

    def config(checkpoint: str | None) -> EvalConfig:
        acting = ActingConfig(n_action_steps=args.n_action_steps, num_inference_steps=args.inference_steps)
        return EvalConfig(env=EnvConfig(suite=args.suite), checkpoint=checkpoint, episodes_per_task=args.episodes,
                          acting=acting if checkpoint else ActingConfig(),
                          rollout=rollout)

    experts = None if args.skip_experts else timed_evaluation(config(None))
    learned = timed_evaluation(config(args.checkpoint))
    ratio = round(learned["steps_per_s"] / experts["steps_per_s"], 2) if experts else None
    for name, run in (("experts", experts), ("learned", learned)):
        if run is None:
            continue
        print(f"  {name:8s} {run['wall_s']:7.1f} s  {run['episodes']:5d} episodes  {run['env_steps']:7d} env steps  "
              f"{run['steps_per_s']:7.1f} steps/s  success {run['mean_success']}")
    if "policy_s" in learned:
        print(f"  policy calls: {learned['policy_calls']} of {learned['rows_per_call']} rows on average, "
              f"{learned['policy_s']} s in all ({learned['policy_us_per_step']} us per env step)")
    if ratio is not None:
        print(f"learned policy: {ratio}x the experts' env steps/s")
    settings = {k: getattr(rollout, k) for k in ("num_workers", "envs_per_worker", "pipeline_groups",
                                                  "policy_batch_size", "policy_threads")}
    save(args.name, {"suite": args.suite, "checkpoint": args.checkpoint, "rollout": settings,
                                "acting": {"n_action_steps": args.n_action_steps,
                                           "num_inference_steps": args.inference_steps},
                                "experts": experts, "learned": learned, "ratio": ratio})


if __name__ == "__main__":
    main()
