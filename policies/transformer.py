"""Transformer policy: a non-diffusion baseline that regresses the normalised action chunk.

T learned query tokens attend, in a transformer encoder, to one token of global conditioning
(observation window + task); each query's output is one action. Loss: L1 on the non-padded
steps, as ACT uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from policies.base import MultitaskPolicy, masked_mean
from policies.config import PolicyConfig
from policies.registry import register_policy
from policies.spec import PolicySpec


@dataclass
class TransformerConfig(PolicyConfig):
    name: str = "transformer"
    d_model: int = 256
    num_layers: int = 4
    num_heads: int = 4
    dropout: float = 0.1


@register_policy("transformer", TransformerConfig)
class TransformerPolicy(MultitaskPolicy):
    config: TransformerConfig

    def __init__(self, config: TransformerConfig, spec: PolicySpec):
        super().__init__(config, spec)
        d = config.d_model
        self.cond_token = nn.Linear(self.cond_dim, d)
        self.queries = nn.Parameter(torch.randn(1, config.horizon + 1, d) * 0.02)  # position 0: the condition
        layer = nn.TransformerEncoderLayer(d, config.num_heads, 4 * d, config.dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, config.num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, spec.action_dim)

    def _chunk(self, cond: torch.Tensor) -> torch.Tensor:
        """cond (B, C) -> normalised actions (B, T, Da)."""
        queries = self.queries.expand(cond.shape[0], -1, -1)
        tokens = torch.cat([self.cond_token(cond)[:, None] + queries[:, :1], queries[:, 1:]], dim=1)
        return self.head(self.norm(self.encoder(tokens))[:, 1:])

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        error = F.l1_loss(self._chunk(self.global_condition(batch)).float(), self.normalized_actions(batch),
                          reduction="none")
        loss, per_sample = masked_mean(error, self.loss_mask(batch, padded_steps=True))
        return {"loss": loss, "loss_per_sample": per_sample}

    def sample_actions(self, cond: torch.Tensor, noise: torch.Tensor,
                       batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self._chunk(cond)  # deterministic: the noise is not used
