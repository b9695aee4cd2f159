"""Diffusion policy: DDPM training, DDIM sampling of a normalised action chunk (diffusers schedulers).

Training adds noise at a random diffusion step to the normalised chunk (B, T, Da) and regresses
the noise (``prediction_type=epsilon``) or the clean chunk (``sample``). Inference starts from
Gaussian noise and takes `num_inference_steps` DDIM steps. Defaults follow Diffusion Policy:
100 training steps with the squared-cosine schedule, samples clipped to [-1, 1].

Multitask parts of the denoiser, switched by config: sparse mixtures of experts routed by task,
instruction and diffusion step (``policy.unet.moe`` / ``policy.transformer.moe``, `policies.moe`), and
per-task adapters (``policy.adapters``, `policies.adapters`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import torch
from diffusers import DDIMScheduler, DDPMScheduler
from torch.nn import functional as F

from common.schema import TASK_EMBEDDING, TASK_INDEX
from policies.adapters import NO_TASK, AdapterConfig, adapter_tasks, task_selected_layers, wrap_with_task_adapters
from policies.base import MultitaskPolicy, masked_mean
from policies.config import PolicyConfig
from policies.denoisers import DENOISERS, TransformerDenoiserConfig, UNetConfig, make_denoiser
from policies.moe import ROUTE_STEP, ROUTE_TIMESTEP, moe_layers
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
    adapters: AdapterConfig = field(default_factory=AdapterConfig)  # per-task LoRA / output heads

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
                                      self.cond_dim, config.horizon, self.conditioning.route_dims)
        if config.adapters.enabled:
            wrap_with_task_adapters(self.denoiser, config.adapters, len(spec.tasks))
        schedule = dict(num_train_timesteps=config.num_train_timesteps, beta_schedule=str(config.beta_schedule),
                        clip_sample=True, prediction_type=str(config.prediction_type))
        self.train_scheduler = DDPMScheduler(**schedule)
        self.inference_scheduler = DDIMScheduler(**schedule, set_alpha_to_one=True)
        self.moe = moe_layers(self.denoiser)
        self.adapter_layers = task_selected_layers(self.denoiser)

    def _denoise(self, batch: dict[str, torch.Tensor]):
        """(noisy (B, T, Da), steps (B,), cond (B, C)) -> prediction, with the batch's routing and adapters (and,
        across suites, the action dimensions of other suites zeroed: never read)."""
        route = self.conditioning.routing_context(batch)
        tasks = None
        if self.config.adapters.enabled:
            tasks = batch[TASK_INDEX] if TASK_EMBEDDING not in batch else torch.full_like(batch[TASK_INDEX], NO_TASK)
        suite = self.suite_of(batch)
        own_dims = None if suite is None else self.suite_action_mask[suite][:, None]  # (B, 1, Da)

        def denoise(noisy: torch.Tensor, steps: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
            if own_dims is not None:
                noisy = noisy * own_dims
            with adapter_tasks(self.adapter_layers, tasks):  # no layers without adapters: nothing to set
                return self.denoiser(noisy, steps, cond, route)

        return denoise

    @property
    def losses_are_per_sample(self) -> bool:
        return not self.moe  # a mixture's balance loss is a statistic of the whole batch's routing

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """batch: obs (B, To, ...), ``action`` (B, T, Da), ``action.is_pad`` (B, T) -> {"loss", and its parts}."""
        cond = self.global_condition(batch)
        actions = self.normalized_actions(batch)
        noise = torch.randn_like(actions)
        steps = torch.randint(0, self.config.num_train_timesteps, (actions.shape[0],), device=actions.device)
        noisy = self.train_scheduler.add_noise(actions, noise, steps)
        prediction = self._denoise(batch)(noisy, steps, cond)
        target = noise if self.config.prediction_type == PredictionType.epsilon else actions
        error = F.mse_loss(prediction.float(), target, reduction="none")  # (B, T, Da)
        loss, per_sample = masked_mean(error, self.loss_mask(batch, padded_steps=self.config.mask_padding))
        if not self.moe:
            return {"loss": loss, "loss_per_sample": per_sample}
        balance = sum(layer.balance_loss for _, layer in self.moe) / len(self.moe)
        weight = self.moe[0][1].config.balance_loss_weight
        return {"loss": loss + weight * balance, "loss_per_sample": per_sample, "loss_aux": weight * balance,
                "loss_balance": balance}

    def sample_actions(self, cond: torch.Tensor, noise: torch.Tensor,
                       batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """cond (B, C), noise (B, T, Da) -> normalised actions (B, T, Da) by DDIM (deterministic, eta = 0)
        from the noise."""
        sample, denoise = noise, self._denoise(batch)
        scheduler = self.inference_scheduler
        scheduler.set_timesteps(self.config.num_inference_steps, device=cond.device)
        for t in scheduler.timesteps:
            steps = torch.full((cond.shape[0],), int(t), device=cond.device, dtype=torch.long)
            sample = scheduler.step(denoise(sample, steps, cond), t, sample).prev_sample
        return sample

    def new_instruction_note(self) -> str | None:
        if self.config.adapters.enabled:
            return "per-task adapters unused: instructions outside the task table run on the shared weights"
        return None

    def training_scalars(self) -> dict[str, float]:
        """Mixture of experts: each expert's share of the last training batch's routing, averaged over layers."""
        if not self.moe:
            return {}
        usage = torch.stack([layer.last_gates.gt(0).float().mean(0) for _, layer in self.moe]).mean(0)
        return {f"moe/expert_{e}_share": float(share) / self.moe[0][1].config.top_k for e, share in enumerate(usage)}

    def checkpoint_extras(self) -> dict[str, object]:
        """Mixture of experts: ``expert_usage.json``, per layer and task, each expert's share of the top-k
        choices over all diffusion steps (routed without noise)."""
        if not self.moe:
            return {}
        return {"expert_usage.json": {"tasks": [t.name for t in self.spec.tasks], "layers": self.expert_usage()}}

    @torch.no_grad()
    def expert_usage(self) -> dict[str, list[list[float]]]:
        """{layer: (tasks, E) share of each expert in the routing of every task, over every training step}."""
        tasks = torch.arange(len(self.spec.tasks), device=next(self.parameters()).device)
        steps = torch.arange(self.config.num_train_timesteps, device=tasks.device)
        task_grid, step_grid = tasks.repeat_interleave(len(steps)), steps.repeat(len(tasks))
        route = self.conditioning.routing_context({TASK_INDEX: task_grid})
        route |= {ROUTE_STEP: self.denoiser.step_embedding(step_grid), ROUTE_TIMESTEP: step_grid}
        return {name: layer.usage(route).reshape(len(tasks), len(steps), -1).mean(1).tolist()
                for name, layer in self.moe}
