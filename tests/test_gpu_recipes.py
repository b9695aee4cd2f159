"""bench/gpu_recipes.py, the prepared GPU check, runs its whole path on the CPU: presets composed, policies
built for their suites' shapes, throughput per precision, a loss that falls on fixed batches."""

from __future__ import annotations

import torch

from bench.gpu_recipes import device_batches, loss_curve, preset, spec_of, throughput, trainer_for

TINY = ["trainer.batch_size=4", "policy.unet.down_dims=[16,32]", "policy.obs_encoder.image_channels=[8,16]",
        "env.image_size=32"]


def test_the_gpu_presets_compose_for_their_suites_shapes():
    gpu = preset("mt50_state_gpu", [])
    assert (gpu.trainer.batch_size, gpu.policy.unet.down_dims, gpu.dataset.task_balanced) == (512, [128, 256, 512],
                                                                                               True)
    spec = spec_of(gpu)
    assert (spec.state_dim, spec.action_dim, len(spec.tasks), spec.cameras) == (39, 4, 50, [])
    libero = spec_of(preset("libero_image", []))
    assert (libero.state_dim, libero.action_dim, len(libero.tasks)) == (8, 7, 10)
    assert libero.image_shapes == {"agentview": (3, 128, 128), "eye_in_hand": (3, 128, 128)}


def test_a_preset_trains_in_fp32_and_bf16_and_its_loss_falls_on_fixed_batches(tmp_path):
    cfg = preset("libero_image", TINY)
    spec = spec_of(cfg)
    batches = device_batches(spec, cfg, 8, torch.device("cpu"))
    assert batches[0]["obs.rgb.agentview"].shape == (4, 2, 3, 32, 32)
    for variant in ("fp32", "bf16"):
        row = throughput(trainer_for(preset("libero_image", TINY), spec, "cpu", variant, tmp_path), batches,
                         seconds=0.2, warmup=1)
        assert row["samples_per_s"] > 0 and row["steps"] >= 3
    short_warmup = [*TINY, "trainer.optim.warmup_steps=6", "trainer.optim.lr=1e-3"]  # a short warmup as in main()
    losses = loss_curve(trainer_for(preset("libero_image", short_warmup), spec, "cpu", "fp32", tmp_path / "loss"),
                        batches, steps=100)
    assert sum(losses[-20:]) / 20 < 0.95 * sum(losses[:20]) / 20  # deterministic: seeded batches and noise
