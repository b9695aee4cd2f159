"""Denoisers of the diffusion policy: noisy action chunk, diffusion step and conditioning -> prediction.

    denoiser = make_denoiser("unet", UNetConfig(), action_dim=4, cond_dim=C, horizon=16, route_dims={})
    out = denoiser(noisy_actions, timesteps, cond, route)   # (B, T, Da), (B,), (B, C) -> (B, T, Da)

``unet``: Diffusion Policy's 1-D temporal conv UNet; every residual block is FiLM-modulated by
the conditioning (diffusion step embedding + global condition). ``transformer``: the chunk's T
action tokens attend to two prefix tokens (diffusion step, global condition).
The diffusion step embedding is diffusers' sinusoidal `Timesteps` + `TimestepEmbedding` MLP.

Either can hold sparse mixtures of experts (`policies.moe`, config field ``moe``): the UNet's residual
blocks mix E second conv blocks, the transformer's layers mix E feed-forward networks. `route` carries
the routing context the policy provides (task / instruction embeddings, the task index for caching); the
denoiser adds the diffusion step's embedding to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from torch import nn
from torch.nn import functional as F

from common.registry import Registry
from policies.moe import ROUTE_STEP, ROUTE_TIMESTEP, MixtureOfExperts, MoEConfig

DENOISERS: Registry[type[nn.Module]] = Registry("denoiser")


@dataclass
class UNetConfig:
    down_dims: list[int] = field(default_factory=lambda: [128, 256, 512])  # channels per level
    kernel_size: int = 5
    step_embedding_dim: int = 128
    moe: MoEConfig = field(default_factory=MoEConfig)  # experts in every residual block's second conv block


@dataclass
class TransformerDenoiserConfig:
    d_model: int = 256
    num_layers: int = 4
    num_heads: int = 4
    dropout: float = 0.0
    moe: MoEConfig = field(default_factory=MoEConfig)  # experts in every layer's feed-forward network


class StepEmbedding(nn.Module):
    """(B,) diffusion steps -> (B, dim)."""

    def __init__(self, dim: int):
        super().__init__()
        self.sinusoid = Timesteps(dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.mlp = TimestepEmbedding(dim, dim)

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.sinusoid(timesteps).to(self.mlp.linear_1.weight.dtype))


def with_step(route: dict[str, torch.Tensor] | None, timesteps: torch.Tensor,
              step: torch.Tensor) -> dict[str, torch.Tensor]:
    """The policy's routing context plus the diffusion step (its embedding and its value)."""
    return {**(route or {}), ROUTE_STEP: step, ROUTE_TIMESTEP: timesteps}


class ConvBlock(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__(nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
                         nn.GroupNorm(8, out_channels), nn.SiLU())


class FiLMResidualBlock(nn.Module):
    """(B, C_in, T), cond (B, D) -> (B, C_out, T); the condition scales and shifts the first block's output.
    With a mixture of experts, the second block is E experts routed per sample."""

    def __init__(self, in_channels: int, out_channels: int, cond_dim: int, kernel_size: int,
                 moe: MoEConfig | None = None, route_dims: dict[str, int] | None = None):
        super().__init__()
        self.block1 = ConvBlock(in_channels, out_channels, kernel_size)
        if moe is not None and moe.enabled:
            self.block2 = MixtureOfExperts(lambda: ConvBlock(out_channels, out_channels, kernel_size), moe,
                                           route_dims or {})
        else:
            self.block2 = ConvBlock(out_channels, out_channels, kernel_size)
        self.film = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 2 * out_channels))
        self.residual = nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor, route: dict[str, torch.Tensor]) -> torch.Tensor:
        scale, shift = self.film(cond).unsqueeze(-1).chunk(2, dim=1)
        y = self.block1(x) * (1 + scale) + shift
        y = self.block2(y, route) if isinstance(self.block2, MixtureOfExperts) else self.block2(y)
        return y + self.residual(x)


@DENOISERS.register("unet")
class ConditionalUnet1D(nn.Module):
    def __init__(self, config: UNetConfig, action_dim: int, cond_dim: int, horizon: int,
                 route_dims: dict[str, int] | None = None):
        super().__init__()
        dims = list(config.down_dims)
        if horizon % 2 ** (len(dims) - 1):
            raise ValueError(f"the UNet halves the horizon {len(dims) - 1} times: horizon={horizon} must be "
                             f"divisible by {2 ** (len(dims) - 1)}")
        self.step_embedding = StepEmbedding(config.step_embedding_dim)
        route_dims = {**(route_dims or {}), ROUTE_STEP: config.step_embedding_dim}
        film_dim = config.step_embedding_dim + cond_dim
        k = config.kernel_size

        def block(c_in: int, c_out: int) -> FiLMResidualBlock:
            return FiLMResidualBlock(c_in, c_out, film_dim, k, config.moe, route_dims)

        self.down = nn.ModuleList()
        for level, (c_in, c_out) in enumerate(zip([action_dim] + dims[:-1], dims)):
            last = level == len(dims) - 1
            self.down.append(nn.ModuleList([block(c_in, c_out), block(c_out, c_out),
                                            nn.Identity() if last else nn.Conv1d(c_out, c_out, 3, 2, 1)]))
        self.mid = nn.ModuleList([block(dims[-1], dims[-1]) for _ in range(2)])
        self.up = nn.ModuleList()
        for c_out, c_skip in zip(reversed(dims[:-1]), reversed(dims[1:])):
            self.up.append(nn.ModuleList([block(2 * c_skip, c_out), block(c_out, c_out),
                                          nn.ConvTranspose1d(c_out, c_out, 4, 2, 1)]))
        self.head = nn.Sequential(ConvBlock(dims[0], dims[0], k), nn.Conv1d(dims[0], action_dim, 1))

    def forward(self, actions: torch.Tensor, timesteps: torch.Tensor, cond: torch.Tensor,
                route: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        step = self.step_embedding(timesteps)
        film, route = torch.cat([step, cond], dim=-1), with_step(route, timesteps, step)
        x = actions.transpose(1, 2)  # (B, Da, T)
        skips = []
        for block1, block2, downsample in self.down:
            x = block2(block1(x, film, route), film, route)
            skips.append(x)
            x = downsample(x)
        for block in self.mid:
            x = block(x, film, route)
        for block1, block2, upsample in self.up:
            x = torch.cat([x, skips.pop()], dim=1)
            x = upsample(block2(block1(x, film, route), film, route))
        return self.head(x).transpose(1, 2)


class TransformerLayer(nn.Module):
    """A pre-norm transformer encoder layer with GELU (torch's `TransformerEncoderLayer(norm_first=True)`,
    the same parameters and names) whose feed-forward network can be a mixture of experts."""

    def __init__(self, d: int, heads: int, dropout: float, moe: MoEConfig, route_dims: dict[str, int]):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.dropout, self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout), nn.Dropout(dropout)
        if moe.enabled:
            self.ffn = MixtureOfExperts(lambda: nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Dropout(dropout),
                                                              nn.Linear(4 * d, d)), moe, route_dims)
        else:
            self.linear1, self.linear2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x: torch.Tensor, route: dict[str, torch.Tensor]) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.dropout1(self.self_attn(h, h, h, need_weights=False)[0])
        h = self.norm2(x)
        if hasattr(self, "ffn"):
            return x + self.dropout2(self.ffn(h, route))
        return x + self.dropout2(self.linear2(self.dropout(F.gelu(self.linear1(h)))))


class TransformerEncoder(nn.Module):
    """A stack of `TransformerLayer`s (named as torch's `TransformerEncoder`, so checkpoints keep their keys)."""

    def __init__(self, layers: list[TransformerLayer]):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, route: dict[str, torch.Tensor]) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, route)
        return x


@DENOISERS.register("transformer")
class TransformerDenoiser(nn.Module):
    def __init__(self, config: TransformerDenoiserConfig, action_dim: int, cond_dim: int, horizon: int,
                 route_dims: dict[str, int] | None = None):
        super().__init__()
        d = config.d_model
        self.step_embedding = StepEmbedding(d)
        self.cond_token = nn.Linear(cond_dim, d)
        self.action_in = nn.Linear(action_dim, d)
        self.position = nn.Parameter(torch.zeros(1, horizon + 2, d))
        nn.init.normal_(self.position, std=0.02)
        route_dims = {**(route_dims or {}), ROUTE_STEP: d}
        self.encoder = TransformerEncoder([TransformerLayer(d, config.num_heads, config.dropout, config.moe,
                                                            route_dims) for _ in range(config.num_layers)])
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, action_dim)

    def forward(self, actions: torch.Tensor, timesteps: torch.Tensor, cond: torch.Tensor,
                route: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        step = self.step_embedding(timesteps)
        route = with_step(route, timesteps, step)
        prefix = torch.stack([step, self.cond_token(cond)], dim=1)  # (B, 2, d)
        x = torch.cat([prefix, self.action_in(actions)], dim=1) + self.position
        return self.head(self.norm(self.encoder(x, route))[:, 2:])


def make_denoiser(name: str, config: object, action_dim: int, cond_dim: int, horizon: int,
                  route_dims: dict[str, int] | None = None) -> nn.Module:
    """The registered denoiser `name`, built from its own config (the policy config's field of that name).
    `route_dims`: sizes of the routing context's parts the policy provides (for mixtures of experts)."""
    return DENOISERS.get(name)(config, action_dim, cond_dim, horizon, route_dims)
