"""Training samples/s, inference latency and parameter count of every policy and denoiser.

    python -m bench.policy_speed                    # the configurations of the presets, CPU
    python -m bench.policy_speed --seconds 5 --threads 1
    python -m bench.policy_speed --tasks 50 --cases diffusion_unet_state diffusion_unet_moe_state   # MT50's routing

For each policy: the mt10_state configuration (state only, 39-d state, 4-d actions, 10 tasks,
task-index + text conditioning; for the diffusion denoisers also with a mixture of 8 experts, top-2, and,
for the UNet, with rank-8 per-task adapters) and, for the UNet diffusion policy, the mt50_image one (two
128x128 cameras) and the libero_image_cpu one (two 64x64 cameras, UNet (64, 128), ResNet (16, 32,
64); measured with the 39-d state and 4-d actions of the other cases). Training: optimizer steps
(forward, backward, AdamW) on random batches of the preset's batch size, timed after 3 warm-up
steps; data loading is not included (see
bench/sampling_throughput.py). Inference: one action chunk (DDIM 10 steps for diffusion) for
batch 1 and batch 50, in eval mode, after one warm-up call. `--tasks N` spreads the batches over N tasks
(a mixture of experts then routes to more experts per batch, adapters select among more).
Writes bench/results/policy_speed.json (policy_speed_<N>tasks.json for N other than 10).
"""

from __future__ import annotations

import argparse
import time

import torch

from bench.common import load, save
from common.schema import ACTION, ACTION_IS_PAD, OBS_STATE, TASK_INDEX, Task, rgb_key
from policies.adapters import AdapterConfig
from policies.config import ObsEncoderConfig
from policies.denoisers import TransformerDenoiserConfig, UNetConfig
from policies.moe import MoEConfig
from policies.registry import config_class, make_policy
from policies.spec import PolicySpec

MT10_TASKS = 10
SMALL_UNET = {"unet": UNetConfig(down_dims=[64, 128])}  # the mt10_state preset
EXPERTS = MoEConfig(num_experts=8, top_k=2)  # routed by task + diffusion step (the default router input)
CASES = {  # name: (policy, config fields, cameras, training batch size)
    "diffusion_unet_state": ("diffusion", SMALL_UNET, {}, 128),
    "diffusion_unet_default_state": ("diffusion", {}, {}, 128),
    "diffusion_unet_moe_state": ("diffusion", {"unet": UNetConfig(down_dims=[64, 128], moe=EXPERTS)}, {}, 128),
    "diffusion_unet_adapters_state": ("diffusion", {**SMALL_UNET, "adapters": AdapterConfig(rank=8)}, {}, 128),
    "diffusion_transformer_state": ("diffusion", {"denoiser": "transformer"}, {}, 128),
    "diffusion_transformer_moe_state": ("diffusion", {"denoiser": "transformer",
                                                      "transformer": TransformerDenoiserConfig(moe=EXPERTS)}, {}, 128),
    "transformer_state": ("transformer", {}, {}, 128),
    "diffusion_unet_image": ("diffusion", {"obs_encoder": ObsEncoderConfig()}, {"corner": (3, 128, 128),
                                                                               "topview": (3, 128, 128)}, 32),
    "diffusion_unet_image_small": (  # the libero_image_cpu preset: two 64x64 cameras, small UNet and ResNet
        "diffusion", {**SMALL_UNET, "obs_encoder": ObsEncoderConfig(image_channels=[16, 32, 64])},
        {"agentview": (3, 64, 64), "eye_in_hand": (3, 64, 64)}, 64),
}


def bench_tasks(count: int) -> list[Task]:
    return [Task("bench", f"task-{i}", i, f"instruction {i}") for i in range(count)]


TASKS = bench_tasks(MT10_TASKS)


def random_batch(spec: PolicySpec, batch_size: int, horizon: int = 16) -> dict[str, torch.Tensor]:
    batch = {OBS_STATE: torch.randn(batch_size, 2, spec.state_dim),
             TASK_INDEX: torch.randint(0, len(spec.tasks), (batch_size,)),
             ACTION: torch.rand(batch_size, horizon, spec.action_dim) * 2 - 1,
             ACTION_IS_PAD: torch.zeros(batch_size, horizon, dtype=torch.bool)}
    for camera, shape in spec.image_shapes.items():
        batch[rgb_key(camera)] = torch.randint(0, 256, (batch_size, 2, *shape), dtype=torch.uint8)
    return batch


def training_rate(policy, batch: dict[str, torch.Tensor], seconds: float) -> float:
    """Samples per second of full optimizer steps."""
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-4)
    policy.train()
    steps, started = -3, 0.0
    while steps < 1 or time.perf_counter() - started < seconds:
        if steps == 0:
            started = time.perf_counter()
        loss = policy.compute_loss(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps += 1
    return steps * len(batch[OBS_STATE]) / (time.perf_counter() - started)


@torch.no_grad()
def latency_ms(policy, batch: dict[str, torch.Tensor], repeats: int = 10) -> float:
    policy.eval()
    policy.predict_action_chunk(batch)
    started = time.perf_counter()
    for _ in range(repeats):
        policy.predict_action_chunk(batch)
    return (time.perf_counter() - started) / repeats * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="timed training seconds per case")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES),
                        help="measure only these; the other cases' figures in the results file are kept")
    parser.add_argument("--tasks", type=int, default=MT10_TASKS, help="tasks the batches are spread over")
    args = parser.parse_args()
    if args.tasks < 1:
        parser.error(f"--tasks must be >= 1, got {args.tasks}")
    results = "policy_speed" if args.tasks == MT10_TASKS else f"policy_speed_{args.tasks}tasks"
    torch.set_num_threads(args.threads)
    figures = {}
    for case in args.cases:
        name, fields, cameras, batch_size = CASES[case]
        torch.manual_seed(0)
        spec = PolicySpec(39, 4, bench_tasks(args.tasks), cameras)
        policy = make_policy(config_class(name)(name=name, **fields), spec)
        result = {"policy": name, **{k: str(v) for k, v in fields.items()}, "cameras": list(cameras),
                  "parameters": sum(p.numel() for p in policy.parameters()), "train_batch_size": batch_size,
                  "train_samples_per_s": round(training_rate(policy, random_batch(policy.spec, batch_size),
                                                             args.seconds), 1)}
        for size in (1, 50):
            result[f"inference_ms_batch_{size}"] = round(latency_ms(policy, random_batch(policy.spec, size)), 2)
        figures[case] = result
        print(f"{case:32s} {result['parameters'] / 1e6:6.2f}M params  train {result['train_samples_per_s']:8.1f} "
              f"samples/s  act B=1 {result['inference_ms_batch_1']:7.1f} ms  "
              f"B=50 {result['inference_ms_batch_50']:7.1f} ms")
    previous = load(results).get("cases", {}) if set(args.cases) != set(CASES) else {}
    save(results, {"threads": args.threads, "seconds": args.seconds, "tasks": args.tasks,
                   "cases": {**previous, **figures}})


if __name__ == "__main__":
    main()
