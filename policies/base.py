"""What every policy shares: normalisation, observation encoding and task conditioning.

    policy = make_policy(config, spec)               # policies.registry
    policy.normalizer.fit(stats)                     # statistics travel with the weights
    policy.conditioning.set_text_table(embeddings)   # (N, E) frozen instruction embeddings
    loss = policy.compute_loss(batch)["loss"]        # batch: schema.py keys, torch tensors
    actions = policy.predict_action_chunk(batch)     # (B, T, Da) raw actions

A subclass implements `compute_loss` and `sample_actions`; both see the global conditioning
vector (B, C): the encoded observation window, flattened, then the task conditioning.

A policy trained across suites (`PolicySpec.suites`) reads each row's ``suite.index``: it normalises with that
suite's statistics, zeroes the state dimensions and camera features the suite does not have (so padding is
never read), and its losses leave out the action dimensions the suite does not use (`loss_mask`).
"""

from __future__ import annotations

import torch
from torch import nn

from common.schema import ACTION, ACTION_IS_PAD, OBS_STATE, SUITE_INDEX, rgb_key
from policies.conditioning import TaskConditioning
from policies.config import PolicyConfig
from policies.encoders import ObservationEncoder
from policies.normalizer import Normalizer
from policies.spec import PolicySpec
from policies.text_encoder import text_embedding_dim


class MultitaskPolicy(nn.Module):
    def __init__(self, config: PolicyConfig, spec: PolicySpec):
        super().__init__()
        self.config, self.spec = config, spec
        self.n_obs_steps, self.horizon, self.n_action_steps = config.n_obs_steps, config.horizon, config.n_action_steps
        self.normalizer = Normalizer({OBS_STATE: (config.state_normalization, spec.state_dim),
                                      ACTION: (config.action_normalization, spec.action_dim)},
                                     groups=max(1, len(spec.suites)))
        shapes = spec.suites or [spec.shape_of("")]  # (S, D) masks of what each suite has; derived from the spec
        self.register_buffer("suite_state_mask", torch.stack([torch.arange(spec.state_dim) < s.state_dim
                                                              for s in shapes]), persistent=False)
        self.register_buffer("suite_action_mask", torch.stack([torch.arange(spec.action_dim) < s.action_dim
                                                               for s in shapes]), persistent=False)
        camera_mask = torch.zeros(len(shapes), len(spec.cameras), dtype=torch.bool)
        for row, shape in enumerate(shapes):
            camera_mask[row] = torch.tensor([c in shape.cameras for c in spec.cameras], dtype=torch.bool)
        self.register_buffer("suite_camera_mask", camera_mask, persistent=False)
        self.obs_encoder = ObservationEncoder(config.obs_encoder, spec.state_dim, spec.image_shapes)
        text_dim = text_embedding_dim(config.conditioning.text_encoder) if config.conditioning.text else 0
        self.conditioning = TaskConditioning(config.conditioning, len(spec.tasks), text_dim)
        self.cond_dim = config.n_obs_steps * self.obs_encoder.feature_dim + self.conditioning.output_dim

    def suite_of(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """(B,) int64 suite of each row for a policy across suites (``suite.index``); None for one suite."""
        if not self.spec.suites:
            return None
        if SUITE_INDEX not in batch:
            raise ValueError(f"the policy was trained across suites {[s.name for s in self.spec.suites]}: the batch "
                             f"must say each row's suite ({SUITE_INDEX!r})")
        return batch[SUITE_INDEX].long()

    def global_condition(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """batch -> (B, C): observation features of the last To steps, flattened, and task conditioning."""
        suite = self.suite_of(batch)
        states = self.normalizer.normalize(OBS_STATE, batch[OBS_STATE][:, -self.n_obs_steps:].float(), suite)
        images = {c: batch[rgb_key(c)][:, -self.n_obs_steps:].float() / 255.0 for c in self.spec.cameras}
        present = None
        if suite is not None:
            states = states * self.suite_state_mask[suite][:, None]  # padded dimensions read as 0, whatever they hold
            present = {c: self.suite_camera_mask[suite, i] for i, c in enumerate(self.spec.cameras)}
        features = self.obs_encoder(states, images, present)
        return torch.cat([features.flatten(1), self.conditioning(batch)], dim=-1)

    def normalized_actions(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The batch's action chunk, normalised: (B, T, Da)."""
        return self.normalizer.normalize(ACTION, batch[ACTION][:, :self.horizon].float(), self.suite_of(batch))

    def loss_mask(self, batch: dict[str, torch.Tensor], padded_steps: bool) -> torch.Tensor | None:
        """(B, T, Da) float: 1 where an action's error counts, 0 on the action dimensions of another suite and,
        with `padded_steps`, on steps past the episode's end; None when everything counts."""
        suite = self.suite_of(batch)
        if suite is None and not padded_steps:
            return None
        keep = torch.ones(len(batch[ACTION]), self.horizon, self.spec.action_dim, device=batch[ACTION].device)
        if padded_steps:
            keep = keep * (~batch[ACTION_IS_PAD][:, :self.horizon, None])
        if suite is not None:
            keep = keep * self.suite_action_mask[suite][:, None]
        return keep

    @property
    def losses_are_per_sample(self) -> bool:
        """Whether each sample's loss depends on that sample alone and the loss has no batch-level term, so a
        batch's per-task losses (and their gradients) may come from one forward pass per task's rows."""
        return True

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The training loss (so DistributedDataParallel, which wraps forward, syncs its gradients)."""
        return self.compute_loss(batch)

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """batch with ``action`` (B, T, Da) and ``action.is_pad`` (B, T) -> {"loss": scalar, "loss_per_sample":
        (B,), optionally "loss_aux" (an auxiliary term of ``loss`` that belongs to no task, e.g. a mixture's
        weighted balance loss), and any part worth logging}. Multitask methods group ``loss_per_sample`` by
        task and add ``loss_aux`` as one more objective."""
        raise NotImplementedError

    def sample_actions(self, cond: torch.Tensor, noise: torch.Tensor,
                       batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """cond (B, C) and standard normal noise (B, T, Da) -> normalised actions (B, T, Da); `batch` for
        what else the policy reads per sample (its task, for routing and adapters).
        A deterministic policy ignores the noise; a stochastic one draws from nothing else."""
        raise NotImplementedError

    def training_scalars(self) -> dict[str, float]:
        """Figures of the last training forward to log beside the loss (e.g. expert usage); none by default."""
        return {}

    def new_instruction_note(self) -> str | None:
        """What changes when the policy runs instructions outside its task table (said in the results)."""
        return None

    def checkpoint_extras(self) -> dict[str, object]:
        """JSON files to write beside the weights in every checkpoint, by file name; none by default."""
        return {}

    @property
    def noise_shape(self) -> tuple[int, int]:
        """(T, Da): the noise `sample_actions` takes per row."""
        return (self.horizon, self.spec.action_dim)

    @torch.no_grad()
    def predict_action_chunk(self, batch: dict[str, torch.Tensor], noise: torch.Tensor | None = None,
                             generator: torch.Generator | None = None) -> torch.Tensor:
        """batch of observations (B, To, ...) and task ids -> raw actions (B, T, Da).

        `noise` (B, T, Da): the standard normal noise to sample with; None: drawn from `generator`
        (or torch's global generator). The same batch and noise give the same actions.
        """
        cond = self.global_condition(batch)
        if noise is None:
            noise = torch.randn(cond.shape[0], *self.noise_shape, generator=generator)
        noise = noise.to(device=cond.device, dtype=cond.dtype)
        actions = self.sample_actions(cond, noise, batch).float()
        return self.normalizer.unnormalize(ACTION, actions, self.suite_of(batch))

    def check_batch(self, batch: dict[str, torch.Tensor]) -> None:
        """Raise ValueError naming the key whose shape does not fit the spec."""
        expected = {OBS_STATE: (self.spec.state_dim,)}
        expected |= {rgb_key(c): tuple(s) for c, s in self.spec.image_shapes.items()}
        for key, tail in expected.items():
            if key not in batch:
                raise ValueError(f"batch has no {key!r}; the policy needs {sorted(expected)}")
            shape = tuple(batch[key].shape)
            if shape[2:] != tail or shape[1] < self.n_obs_steps:
                raise ValueError(f"{key} has shape {shape}, the policy expects (B, >={self.n_obs_steps}, "
                                 f"{', '.join(map(str, tail))})")


def masked_mean(error: torch.Tensor, keep: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """error (B, T, Da) and `MultitaskPolicy.loss_mask` -> (mean over what is kept, (B,) the same per sample)."""
    if keep is None:
        return error.mean(), error.mean((1, 2))
    kept = error * keep
    return kept.sum() / keep.sum().clamp_min(1), kept.sum((1, 2)) / keep.sum((1, 2)).clamp_min(1)
