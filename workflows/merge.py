"""Model merging: per-task fine-tunes of one multitask checkpoint, merged back into one checkpoint.

    python -m workflows.merge --base outputs/train/mt10_state/checkpoints/last \\
        --finetuned outputs/train/ft_*/checkpoints/last --method ties --density 0.5 \\
        --out outputs/merged/mt10_ties
    python eval.py checkpoint=outputs/merged/mt10_ties            # evaluated like any other checkpoint

Each fine-tune i gives a task vector tau_i = theta_i - theta_base per weight tensor; `peft.utils.merge_utils`
combines them (task arithmetic: sum_i w_i tau_i; TIES: trim to the largest `density` share, elect a sign per
entry, average the agreeing ones; DARE: drop entries at random with probability 1 - density and rescale)
and the merged checkpoint holds theta_base + tau. Buffers that are not learned (normaliser, instruction
table) come from the base; fine-tunes with another policy config or task table are refused.

Fine-tunes for it come from train.py: `init_checkpoint=<base> train_tasks=[<task>]` (the task table stays
the suite's; add `trainer.trainable=adapters` to tune only per-task adapters).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file

from common.provenance import provenance
from policies.checkpoint import WEIGHTS_FILE, CheckpointError, build_from_record, read_checkpoint_record, save_policy

log = logging.getLogger("merge")
METHODS = ("task_arithmetic", "ties", "dare_linear", "dare_ties")


def merge_task_vectors(base: dict[str, torch.Tensor], finetuned: list[dict[str, torch.Tensor]], method: str,
                       weights: Sequence[float], density: float, seed: int = 0) -> dict[str, torch.Tensor]:
    """theta_base + merge(theta_i - theta_base) for every floating-point tensor; other tensors from the base."""
    from peft.utils import merge_utils

    if method not in METHODS:
        raise ValueError(f"unknown merge method {method!r}; known: {', '.join(METHODS)}")
    combine = getattr(merge_utils, method)
    torch.manual_seed(seed)  # DARE drops entries at random
    weight = torch.tensor(list(weights), dtype=torch.float32)
    merged = {}
    for key, theta in base.items():
        if not theta.is_floating_point():
            merged[key] = theta.clone()
            continue
        vectors = [tuned[key].float() - theta.float() for tuned in finetuned]
        if all(not v.any() for v in vectors):
            merged[key] = theta.clone()
            continue
        arguments = {"density": density} if method != "task_arithmetic" else {}
        merged[key] = (theta.float() + combine(vectors, weight, **arguments)).to(theta.dtype)
    return merged


def merge_checkpoints(base: Path, finetuned: list[Path], out: Path, method: str, density: float,
                      weights: Sequence[float] | None = None, seed: int = 0) -> Path:
    """Write the merged checkpoint to `out`; returns it."""
    record = read_checkpoint_record(base)
    for path in finetuned:
        other = read_checkpoint_record(path)
        if (other["policy"], other["config"], other["spec"]) != (record["policy"], record["config"], record["spec"]):
            raise CheckpointError(f"{path} is not a fine-tune of {base}: its policy config or task table differs")
    if weights is None:
        weights = [1.0 / len(finetuned) if method in ("task_arithmetic", "dare_linear") else 1.0] * len(finetuned)
    if len(weights) != len(finetuned):
        raise ValueError(f"{len(weights)} weights for {len(finetuned)} fine-tuned checkpoints")
    merged = merge_task_vectors(load_file(str(base / WEIGHTS_FILE)), [load_file(str(p / WEIGHTS_FILE))
                                                                      for p in finetuned], method, weights, density, seed)
    policy = build_from_record(record)
    metadata = record["metadata"] | {"merged": {
        "method": method, "density": density if method != "task_arithmetic" else None, "weights": list(weights),
        "seed": seed, "base": str(base.resolve()), "finetuned": [str(p.resolve()) for p in finetuned],
        "provenance": provenance()}}
    save_policy(out, policy, merged, metadata)
    log.info("merged %d fine-tunes of %s with %s into %s", len(finetuned), base, method, out)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(prog="python -m workflows.merge", description=__doc__.split("\n")[0])
    parser.add_argument("--base", type=Path, required=True, help="the multitask checkpoint the fine-tunes started from")
    parser.add_argument("--finetuned", type=Path, nargs="+", required=True, help="fine-tuned checkpoint folders")
    parser.add_argument("--method", choices=METHODS, default="ties")
    parser.add_argument("--density", type=float, default=0.5, help="TIES/DARE: share of each task vector kept")
    parser.add_argument("--weights", type=float, nargs="+", default=None,
                        help="one per fine-tune (default: 1/n for task_arithmetic and dare_linear, 1 for ties)")
    parser.add_argument("--seed", type=int, default=0, help="DARE's random drops")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        merge_checkpoints(args.base, args.finetuned, args.out, args.method, args.density, args.weights, args.seed)
    except (CheckpointError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"merged checkpoint: {args.out}  (python eval.py checkpoint={args.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
