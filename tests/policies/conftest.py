"""Tiny policy configs and batches, so every registered policy can be exercised in seconds."""

from __future__ import annotations

import pytest
import torch

from common.schema import ACTION, ACTION_IS_PAD, OBS_STATE, TASK_INDEX, Task, rgb_key
from policies.adapters import AdapterConfig
from policies.config import ConditioningConfig, ObsEncoderConfig, PolicyConfig
from policies.denoisers import TransformerDenoiserConfig, UNetConfig
from policies.moe import MoEConfig
from policies.registry import POLICIES, config_class
from policies.spec import PolicySpec

STATE_DIM, ACTION_DIM, NUM_TASKS, TEXT_DIM = 7, 3, 3, 384
TINY_ENCODER = ObsEncoderConfig(state_hidden_dim=32, state_feature_dim=16, image_channels=[8, 16],
                                image_keypoints=4, image_feature_dim=8)
# Every registry entry, with each of the diffusion policy's denoisers, plain, with a mixture of experts and
# with per-task adapters (LoRA, and task heads on the UNet).
DIFFUSION_VARIANTS = ("unet", "transformer", "unet+moe", "transformer+moe", "unet+adapters", "transformer+adapters")
VARIANTS = [(name, denoiser) for name in POLICIES.names()
            for denoiser in (DIFFUSION_VARIANTS if name == "diffusion" else (None,))]
TINY_MOE = MoEConfig(num_experts=3, top_k=2, router_dim=8)


def tiny_config(name: str, denoiser: str | None = None, **fields) -> PolicyConfig:
    """A small instance of the registered config `name` (2 obs steps, horizon 8, 4 executed)."""
    extra = {}
    if name == "diffusion":
        denoiser, _, part = (denoiser or "unet").partition("+")
        moe = TINY_MOE if part == "moe" else MoEConfig()
        extra = dict(denoiser=denoiser, unet=UNetConfig(down_dims=[16, 32], step_embedding_dim=16, moe=moe),
                     transformer=TransformerDenoiserConfig(d_model=32, num_layers=1, num_heads=2, moe=moe))
        if part == "adapters":
            extra["adapters"] = AdapterConfig(rank=2, task_heads=denoiser == "unet")
    elif name == "transformer":
        extra = dict(d_model=32, num_layers=1, num_heads=2, dropout=0.0)
    fields = dict(n_obs_steps=2, horizon=8, n_action_steps=4, obs_encoder=TINY_ENCODER,
                  conditioning=ConditioningConfig(dim=8)) | extra | fields
    return config_class(name)(name=name, **fields)


def tiny_spec(cameras: dict[str, tuple[int, int, int]] | None = None) -> PolicySpec:
    tasks = [Task("test_suite", f"task-{i}", i, f"do task number {i}") for i in range(NUM_TASKS)]
    return PolicySpec(STATE_DIM, ACTION_DIM, tasks, image_shapes=cameras or {})


def tiny_batch(spec: PolicySpec, batch_size: int = 4, horizon: int = 8, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    batch = {OBS_STATE: torch.randn(batch_size, 2, spec.state_dim, generator=generator),
             TASK_INDEX: torch.arange(batch_size) % len(spec.tasks),
             ACTION: torch.rand(batch_size, horizon, spec.action_dim, generator=generator) * 2 - 1,
             ACTION_IS_PAD: torch.zeros(batch_size, horizon, dtype=torch.bool)}
    for camera, shape in spec.image_shapes.items():
        batch[rgb_key(camera)] = torch.randint(0, 256, (batch_size, 2, *shape), dtype=torch.uint8,
                                               generator=generator)
    return batch


@pytest.fixture(params=VARIANTS, ids=[f"{n}-{d}" if d else n for n, d in VARIANTS])
def variant(request) -> tuple[str, str | None]:
    return request.param
