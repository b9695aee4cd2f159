"""Evaluate a policy on a suite with parallel MuJoCo rollouts.

    python eval.py                                          # scripted experts on MT10, official protocol
    python eval.py env=metaworld_mt50 episodes_per_task=10  # fast mode: 10 goal variations per task
    python eval.py env=metaworld_mt1 env.task=push-v3 rollout.num_workers=2 rollout.videos_per_task=3
    python eval.py checkpoint=outputs/train/mt10_state/checkpoints/last      # a trained policy

Writes into `out_dir` (default outputs/eval/<suite>_<policy>): results.json, results.md, results.html,
episodes.jsonl (one line per finished episode) and videos/*.mp4. Interrupted runs keep what
finished; re-running the same command resumes.
"""

from __future__ import annotations

from common.threads import limit_openmp_spinning

limit_openmp_spinning()  # before torch is first imported: libgomp reads its settings when torch loads it

import hydra  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402


@hydra.main(config_path="configs", config_name="eval", version_base="1.3")
def main(cfg) -> None:
    from workflows.evaluate import evaluate
    from workflows.script import run_script

    run_script(evaluate, OmegaConf.to_object(cfg))


if __name__ == "__main__":
    # Here, not at the top: rollout workers are spawned processes, which import this file again (as
    # __mp_main__) and need none of the workflow (torch and all: ~2.5 s and ~250 MB per worker).
    import workflows.evaluate  # noqa: F401  registers the config schemas hydra composes the configuration with

    main()
