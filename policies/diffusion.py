"""Diffusion policy: DDPM training, DDIM sampling of a normalised action chunk (diffusers schedulers).

Training adds noise at a random diffusion step to the normalised chunk (B, T, Da) and regresses
the noise (``prediction_type=epsilon``) or the clean chunk (``sample``). Inference starts from
Gaussian noise and takes `num_inference_steps` DDIM steps. Defaults follow Diffusion Policy:
100 training steps with the squared-cosine schedule, samples clipped to [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import torch
from diffusers import DDIMScheduler, DDPMScheduler
from torch.nn import functional as F

from common.schema import ACTION, ACTION_IS_PAD
from policies.base import MultitaskPolicy
from policies.config import PolicyConfig
from policies.denoisers import DENOISERS, TransformerDenoiserConfig, UNetConfig, make_denoiser
from policies.registry import register_policy
from policies.spec import PolicySpec


class PredictionType(StrEnum):
    epsilon = "epsilon"  # the denoiser predicts the noise
    sample = "sample"  # the denoiser predicts the clean chunk


class BetaSchedule(StrEnum):  # diffusers' noise schedules
    linear = "linear"
    scaled_linear = "scaled_linear"
    squaredcos_cap_v2 = "squaredcos_cap_v2"
    sigmoid = "sigmoid"


@dataclass
class DiffusionConfig(PolicyConfig):
    name: str = "diffusion"
    denoiser: str = "unet"  # unet (1-D temporal conv UNet with FiLM) or transformer
    unet: UNetConfig = field(default_factory=UNetConfig)
    transformer: TransformerDenoiserConfig = field(default_factory=TransformerDenoiserConfig)
    num_train_timesteps: int = 100  # DDPM steps while training
    num_inference_steps: int = 10  # DDIM steps while acting
    beta_schedule: BetaSchedule = BetaSchedule.squaredcos_cap_v2
    prediction_type: PredictionType = PredictionType.epsilon  # epsilon (predict the noise) or sample
    mask_padding: bool = False  # leave padded steps out of the loss (Diffusion Policy keeps them)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.denoiser not in DENOISERS:
            raise ValueError(f"unknown denoiser {self.denoiser!r}; known: {', '.join(DENOISERS.names())}")
        if not 1 <= self.num_inference_steps <= self.num_train_timesteps:
            raise ValueError(f"need 1 <= num_inference_steps <= num_train_timesteps, got "
                             f"{self.num_inference_steps} and {self.num_train_timesteps}")


@register_policy("diffusion", DiffusionConfig)
class DiffusionPolicy(MultitaskPolicy):
    config: DiffusionConfig

    def __init__(self, config: DiffusionConfig, spec: PolicySpec):
        super().__init__(config, spec)
        self.denoiser = make_denoiser(config.denoiser, getattr(config, config.denoiser), spec.action_dim,
                                      self.cond_dim, config.horizon)
        schedule = dict(num_train_timesteps=config.num_train_timesteps, beta_schedule=str(config.beta_schedule),
                        clip_sample=True, prediction_type=str(config.prediction_type))
        self.train_scheduler = DDPMScheduler(**schedule)
        self.inference_scheduler = DDIMScheduler(**schedule, set_alpha_to_one=True)

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """batch: obs (B, To, ...), ``action`` (B, T, Da), ``action.is_pad`` (B, T) -> {"loss"}."""
        cond = self.global_condition(batch)
        actions = self.normalizer.normalize(ACTION, batch[ACTION][:, :self.horizon].float())
        noise = torch.randn_like(actions)
        steps = torch.randint(0, self.config.num_train_timesteps, (actions.shape[0],), device=actions.device)
        noisy = self.train_scheduler.add_noise(actions, noise, steps)
        prediction = self.denoiser(noisy, steps, cond)
        target = noise if self.config.prediction_type == PredictionType.epsilon else actions
        error = F.mse_loss(prediction.float(), target, reduction="none")  # (B, T, Da)
        if self.config.mask_padding:
            keep = ~batch[ACTION_IS_PAD][:, :self.horizon, None]
            return {"loss": (error * keep).sum() / (keep.sum() * error.shape[-1]).clamp_min(1)}
        return {"loss": error.mean()}

    def sample_actions(self, cond: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """cond (B, C), noise (B, T, Da) -> normalised actions (B, T, Da) by DDIM (deterministic, eta = 0)
        from the noise."""
        sample = noise
        scheduler = self.inference_scheduler
        scheduler.set_timesteps(self.config.num_inference_steps, device=cond.device)
        for t in scheduler.timesteps:
            steps = torch.full((cond.shape[0],), int(t), device=cond.device, dtype=torch.long)
            sample = scheduler.step(self.denoiser(sample, steps, cond), t, sample).prev_sample
        return sample
