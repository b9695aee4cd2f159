"""Collect demonstrations with the scripted experts: one HDF5 file per task (robomimic / LIBERO layout).

    python collect.py                                          # MT10, 50 successful demos per task, state only
    python collect.py env=metaworld_mt50 episodes_per_task=20 rollout.num_workers=2
    python collect.py env.cameras=[corner] env.image_size=128 action_noise=0.1 keep=all

Writes <out_dir>/<task>.hdf5 (default out_dir: data/demos/<suite>). Goals are freshly sampled
per episode from a seed (env.goal_set=random; `official` uses the 50 evaluation goals).
Files appear only when complete; re-running the same command skips finished tasks.
"""

from __future__ import annotations

from common.threads import limit_openmp_spinning

limit_openmp_spinning()  # before torch is first imported: libgomp reads its settings when torch loads it

import hydra  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402


@hydra.main(config_path="configs", config_name="collect", version_base="1.3")
def main(cfg) -> None:
    from workflows.collect import collect
    from workflows.script import run_script

    run_script(collect, OmegaConf.to_object(cfg))


if __name__ == "__main__":
    # Here, not at the top: rollout workers are spawned processes, which import this file again (as
    # __mp_main__) and need none of the workflow (torch and all: ~2.5 s and ~250 MB per worker).
    import workflows.collect  # noqa: F401  registers the config schemas hydra composes the configuration with

    main()
