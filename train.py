"""Train one multitask policy on demonstrations, then evaluate it under the suite's official protocol.

    python train.py                                           # quickstart: experiment=mt10_state (collect, train, eval)
    python train.py experiment=mt50_state                     # MT50 from state (a few CPU hours)
    python train.py policy=transformer trainer.num_steps=2000
    python train.py policy.denoiser=transformer policy.conditioning.task_index=false   # text-only conditioning
    torchrun --nproc_per_node=4 train.py experiment=mt50_image   # DistributedDataParallel (gloo on CPU)

Writes into `out_dir` (default outputs/train/<name>): checkpoints/last (weights, config, training
state; re-running the same command resumes from it), checkpoints/step_<N>, tensorboard/, eval/
(results of evaluations during training) and final_eval/ (results.json, results.md, videos/).
Missing Meta-World demonstrations are collected first with the scripted experts (collect.py).
"""

from __future__ import annotations

from common.threads import limit_openmp_spinning

limit_openmp_spinning()  # before torch is first imported: libgomp reads its settings when torch loads it

import hydra  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402


@hydra.main(config_path="configs", config_name="train", version_base="1.3")
def main(cfg) -> None:
    from workflows.script import run_script
    from workflows.train import train

    run_script(train, OmegaConf.to_object(cfg))


if __name__ == "__main__":
    # Here, not at the top: rollout workers are spawned processes, which import this file again (as
    # __mp_main__) and need none of the workflow (torch and all: ~2.5 s and ~250 MB per worker).
    import workflows.train  # noqa: F401  registers the config schemas hydra composes the configuration with

    main()
