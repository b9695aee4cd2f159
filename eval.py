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

from workflows.evaluate import evaluate  # noqa: E402
from workflows.script import run_script  # noqa: E402


@hydra.main(config_path="configs", config_name="eval", version_base="1.3")
def main(cfg) -> None:
    run_script(evaluate, OmegaConf.to_object(cfg))


if __name__ == "__main__":
    main()
