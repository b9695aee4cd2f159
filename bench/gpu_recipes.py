"""The GPU presets' training on one device: samples/s in fp32, with bf16 autocast and with torch.compile,
peak GPU memory, and the loss over a few hundred steps.

    python -m bench.gpu_recipes                                   # on a GPU: the three presets, ~6 min
    python -m bench.gpu_recipes --device cpu --presets mt50_state_gpu --variants fp32 --seconds 2 --loss-steps 20

Needs neither a simulator run nor demonstrations (a GPU machine may have neither): each preset is composed
from configs/ as train.py composes it, its policy built for its suite's shapes (Meta-World: 39-d state, 4-d
actions; LIBERO: 8-d state, 7-d actions; the preset's cameras at its image size; a random instruction table)
and trained through the real Trainer's train_step (AdamW, warmup, EMA, the preset's batch size and mixed
precision) on random batches already on the device, so the figures leave data loading out
(bench/sampling_throughput.py measures that). Per variant: warm-up steps (torch.compile compiles then,
timed apart), then `--seconds` of steps. The loss: `--loss-steps` steps of the fastest variant on a fixed
set of 8 batches, which the policy can fit, so the loss must fall (the preset's learning rate, warmed up
over a tenth of those steps instead of the preset's warmup). Writes bench/results/gpu_recipes.json
(on a GPU only).

On the lent H200 machine (Python 3.12 and torch only), carry the project's other wheels (`.whl`, see the
device notes): hydra-core, omegaconf, antlr4-python3-runtime, diffusers, safetensors, huggingface-hub,
peft, transformers, h5py, gymnasium, mujoco and their missing needs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from bench.common import save
from bench.multitask_cost import Batches
from bench.policy_speed import random_batch
from common.schema import TASK_INDEX, TASK_INSTRUCTION, Task
from policies.registry import make_policy
from policies.spec import PolicySpec
from training.config import MixedPrecision
from training.trainer import Trainer
from workflows.train import TrainConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PRESETS = ["mt50_state_gpu", "mt50_image", "libero_image"]
VARIANTS = {"fp32": (MixedPrecision.no, False), "bf16": (MixedPrecision.bf16, False),
            "bf16_compile": (MixedPrecision.bf16, True)}
SUITE_SHAPES = {"metaworld": (39, 4), "libero": (8, 7)}  # (state, action) of each family's suites
TASK_COUNTS = {"metaworld_mt10": 10, "metaworld_mt50": 50}  # every LIBERO suite but libero_90 has 10


def preset(name: str, overrides: list[str]) -> TrainConfig:
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return OmegaConf.to_object(compose("train", overrides=[f"experiment={name}", *overrides]))


def spec_of(cfg: TrainConfig) -> PolicySpec:
    suite = cfg.env.suite
    state_dim, action_dim = SUITE_SHAPES[suite.split("_")[0]]
    count = TASK_COUNTS.get(suite, 90 if suite == "libero_90" else 10)
    tasks = [Task(suite, f"task-{i}", i, f"instruction {i}") for i in range(count)]
    size = cfg.env.image_size
    return PolicySpec(state_dim, action_dim, tasks, {c: (3, size, size) for c in cfg.env.cameras})


def device_batches(spec: PolicySpec, cfg: TrainConfig, count: int, device: torch.device) -> list[dict]:
    batches = []
    for i in range(count):
        torch.manual_seed(i)
        batch = random_batch(spec, cfg.trainer.batch_size, horizon=cfg.policy.horizon)
        batch[TASK_INDEX] = torch.randint(0, len(spec.tasks), (cfg.trainer.batch_size,))
        batch = {k: v.to(device) for k, v in batch.items()}
        batch[TASK_INSTRUCTION] = [spec.tasks[int(t)].instruction for t in batch[TASK_INDEX]]
        batches.append(batch)
    return batches


def trainer_for(cfg: TrainConfig, spec: PolicySpec, device: str, variant: str, out_dir: Path) -> Trainer:
    torch.manual_seed(0)
    policy = make_policy(cfg.policy, spec)
    if cfg.policy.conditioning.text:
        policy.conditioning.set_text_table(torch.randn_like(policy.conditioning.text_table))
    precision, compiled = VARIANTS[variant]
    trainer_cfg = cfg.trainer
    trainer_cfg.device, trainer_cfg.mixed_precision, trainer_cfg.compile = device, precision, compiled
    trainer_cfg.num_steps, trainer_cfg.dataloader_workers = 10**7, 0
    return Trainer(trainer_cfg, policy, Batches(len(spec.tasks)), out_dir / variant, progress=False)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def throughput(trainer: Trainer, batches: list[dict], seconds: float, warmup: int) -> dict[str, float]:
    """Warm-up steps (compilation), then `seconds` of steps: samples/s, warm-up seconds, peak memory."""
    model, device = trainer.training_model(), trainer.device
    model.train()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    for i in range(warmup):
        trainer.train_step(model, batches[i % len(batches)])
    synchronize(device)
    warm = time.perf_counter() - started
    steps, started = 0, time.perf_counter()
    while steps < 3 or time.perf_counter() - started < seconds:
        trainer.train_step(model, batches[steps % len(batches)])
        steps += 1
        if steps % 10 == 0:
            synchronize(device)
    synchronize(device)
    elapsed = time.perf_counter() - started
    result = {"samples_per_s": round(steps * len(batches[0][TASK_INDEX]) / elapsed, 1),
              "ms_per_step": round(elapsed / steps * 1000, 2), "warmup_s": round(warm, 1), "steps": steps}
    if device.type == "cuda":
        result["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    return result


def loss_curve(trainer: Trainer, batches: list[dict], steps: int) -> list[float]:
    """The loss of each step on the fixed `batches`, cycled."""
    model = trainer.training_model()
    model.train()
    return [trainer.train_step(model, batches[i % len(batches)])["loss"] for i in range(steps)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+", default=PRESETS)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seconds", type=float, default=20.0, help="timed seconds per variant")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (torch.compile compiles then)")
    parser.add_argument("--loss-steps", type=int, default=300)
    parser.add_argument("--override", nargs="*", default=[], help="hydra overrides applied to every preset")
    parser.add_argument("--out-dir", default="/tmp/gpu_recipes", help="for the trainers' (unused) checkpoints")
    args = parser.parse_args()
    device = torch.device(args.device)
    figures = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu", "presets": {}}
    for name in args.presets:
        cfg = preset(name, args.override)
        spec = spec_of(cfg)
        fixed = device_batches(spec, cfg, 8, device)
        rows = {}
        for variant in args.variants:
            rows[variant] = throughput(trainer_for(preset(name, args.override), spec, args.device, variant,
                                                   Path(args.out_dir) / name), fixed, args.seconds, args.warmup)
            print(f"{name:16s} {variant:13s} {rows[variant]}", flush=True)
        fastest = max(rows, key=lambda v: rows[v]["samples_per_s"])
        short_warmup = [*args.override, f"trainer.optim.warmup_steps={max(1, args.loss_steps // 10)}"]
        trainer = trainer_for(preset(name, short_warmup), spec, args.device, fastest,
                              Path(args.out_dir) / name / "loss")
        losses = loss_curve(trainer, fixed, args.loss_steps)
        window = max(1, min(10, len(losses) // 4))
        first, last = sum(losses[:window]) / window, sum(losses[-window:]) / window
        print(f"{name:16s} loss ({fastest}, {len(losses)} steps on 8 fixed batches): {first:.4f} -> {last:.4f}")
        figures["presets"][name] = {
            "parameters": sum(p.numel() for p in trainer.policy.parameters()),
            "batch_size": cfg.trainer.batch_size, "cameras": list(spec.cameras), "variants": rows,
            "loss": {"variant": fastest, "steps": len(losses), "first_mean": round(first, 5),
                     "last_mean": round(last, 5), "falls": last < first, "every_10th": [round(v, 5) for v in
                                                                                        losses[::10]]}}
    if device.type == "cuda":
        save("gpu_recipes", figures)
    else:
        print("not on a GPU: nothing saved (a smoke run)")


if __name__ == "__main__":
    main()
