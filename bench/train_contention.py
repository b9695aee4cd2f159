"""Two trainings on one machine at once: samples/s of each, beside one training alone.

    python -m bench.train_contention                 # 12 s per training, every set-up
    python -m bench.train_contention --seconds 30

Each training is a separate process doing optimizer steps of the mt10_state UNet on random batches
(bench.policy_speed's loop). Set-ups:
    torch_defaults  torch's own: all cores as threads, libgomp spinning 300,000 iterations
    project         what train.py does (common.threads): GOMP_SPINCOUNT=1000 and as many threads as
                    cores are free when training starts
    one_thread      one thread each
For each: one training alone, then two started together. Writes bench/results/train_contention.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

SETUPS = ("torch_defaults", "project", "one_thread")


def train_for(setup: str, seconds: float) -> dict[str, float]:
    """In the worker process: set up threads as `setup` says, then train; torch is imported only here."""
    from common.threads import limit_openmp_spinning, training_threads

    if setup == "project":
        limit_openmp_spinning()
    import torch

    from bench.policy_speed import CASES, TASKS, random_batch, training_rate
    from policies.registry import config_class, make_policy
    from policies.spec import PolicySpec

    if setup == "project":
        torch.set_num_threads(training_threads())
    elif setup == "one_thread":
        torch.set_num_threads(1)
    name, fields, cameras, batch_size = CASES["diffusion_unet_state"]
    torch.manual_seed(0)
    policy = make_policy(config_class(name)(name=name, **fields), PolicySpec(39, 4, TASKS, cameras))
    rate = training_rate(policy, random_batch(policy.spec, batch_size), seconds)
    return {"threads": torch.get_num_threads(), "samples_per_s": round(rate, 1)}


def run(setup: str, copies: int, seconds: float) -> list[dict[str, float]]:
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    command = [sys.executable, "-m", "bench.train_contention", "--worker", setup, "--seconds", str(seconds)]
    processes = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) for _ in range(copies)]
    return [json.loads(process.communicate()[0].strip().splitlines()[-1]) for process in processes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="timed training seconds per process")
    parser.add_argument("--worker", choices=SETUPS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(train_for(args.worker, args.seconds)))
        return
    from bench.common import save

    figures = {}
    for setup in SETUPS:
        alone, pair = run(setup, 1, args.seconds), run(setup, 2, args.seconds)
        figures[setup] = {"alone": alone[0], "two_at_once": pair}
        each = " + ".join(f"{p['samples_per_s']:.0f} ({p['threads']} thr)" for p in pair)
        print(f"{setup:15s} alone {alone[0]['samples_per_s']:7.0f} samples/s ({alone[0]['threads']} thr)   "
              f"two at once: {each}")
    save("train_contention", {"seconds": args.seconds, "setups": figures})


if __name__ == "__main__":
    main()
