"""Denoisers of the diffusion policy: noisy action chunk, diffusion step and conditioning -> prediction.

    denoiser = make_denoiser("unet", UNetConfig(), action_dim=4, cond_dim=C, horizon=16)
    out = denoiser(noisy_actions, timesteps, cond)      # (B, T, Da), (B,), (B, C) -> (B, T, Da)

``unet``: Diffusion Policy's 1-D temporal conv UNet; every residual block is FiLM-modulated by
the conditioning (diffusion step embedding + global condition). ``transformer``: the chunk's T
action tokens attend to two prefix tokens (diffusion step, global condition).
The diffusion step embedding is diffusers' sinusoidal `Timesteps` + `TimestepEmbedding` MLP.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from torch import nn

from common.registry import Registry

DENOISERS: Registry[type[nn.Module]] = Registry("denoiser")


@dataclass
class UNetConfig:
    down_dims: list[int] = field(default_factory=lambda: [128, 256, 512])  # channels per level
    kernel_size: int = 5
    step_embedding_dim: int = 128


@dataclass
class TransformerDenoiserConfig:
    d_model: int = 256
    num_layers: int = 4
    num_heads: int = 4
    dropout: float = 0.0


class StepEmbedding(nn.Module):
    """(B,) diffusion steps -> (B, dim)."""

    def __init__(self, dim: int):
        super().__init__()
        self.sinusoid = Timesteps(dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.mlp = TimestepEmbedding(dim, dim)

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.sinusoid(timesteps).to(self.mlp.linear_1.weight.dtype))


class ConvBlock(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__(nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
                         nn.GroupNorm(8, out_channels), nn.SiLU())


class FiLMResidualBlock(nn.Module):
    """(B, C_in, T), cond (B, D) -> (B, C_out, T); the condition scales and shifts the first block's output."""

    def __init__(self, in_channels: int, out_channels: int, cond_dim: int, kernel_size: int):
        super().__init__()
        self.block1 = ConvBlock(in_channels, out_channels, kernel_size)
        self.block2 = ConvBlock(out_channels, out_channels, kernel_size)
        self.film = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 2 * out_channels))
        self.residual = nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(cond).unsqueeze(-1).chunk(2, dim=1)
        y = self.block1(x) * (1 + scale) + shift
        return self.block2(y) + self.residual(x)


@DENOISERS.register("unet")
class ConditionalUnet1D(nn.Module):
    def __init__(self, config: UNetConfig, action_dim: int, cond_dim: int, horizon: int):
        super().__init__()
        dims = list(config.down_dims)
        if horizon % 2 ** (len(dims) - 1):
            raise ValueError(f"the UNet halves the horizon {len(dims) - 1} times: horizon={horizon} must be "
                             f"divisible by {2 ** (len(dims) - 1)}")
        self.step_embedding = StepEmbedding(config.step_embedding_dim)
        film_dim = config.step_embedding_dim + cond_dim
        k = config.kernel_size
        self.down = nn.ModuleList()
        for level, (c_in, c_out) in enumerate(zip([action_dim] + dims[:-1], dims)):
            last = level == len(dims) - 1
            self.down.append(nn.ModuleList([FiLMResidualBlock(c_in, c_out, film_dim, k),
                                            FiLMResidualBlock(c_out, c_out, film_dim, k),
                                            nn.Identity() if last else nn.Conv1d(c_out, c_out, 3, 2, 1)]))
        self.mid = nn.ModuleList([FiLMResidualBlock(dims[-1], dims[-1], film_dim, k) for _ in range(2)])
        self.up = nn.ModuleList()
        for c_out, c_skip in zip(reversed(dims[:-1]), reversed(dims[1:])):
            self.up.append(nn.ModuleList([FiLMResidualBlock(2 * c_skip, c_out, film_dim, k),
                                          FiLMResidualBlock(c_out, c_out, film_dim, k),
                                          nn.ConvTranspose1d(c_out, c_out, 4, 2, 1)]))
        self.head = nn.Sequential(ConvBlock(dims[0], dims[0], k), nn.Conv1d(dims[0], action_dim, 1))

    def forward(self, actions: torch.Tensor, timesteps: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        film = torch.cat([self.step_embedding(timesteps), cond], dim=-1)
        x = actions.transpose(1, 2)  # (B, Da, T)
        skips = []
        for block1, block2, downsample in self.down:
            x = block2(block1(x, film), film)
            skips.append(x)
            x = downsample(x)
        for block in self.mid:
            x = block(x, film)
        for block1, block2, upsample in self.up:
            x = torch.cat([x, skips.pop()], dim=1)
            x = upsample(block2(block1(x, film), film))
        return self.head(x).transpose(1, 2)


@DENOISERS.register("transformer")
class TransformerDenoiser(nn.Module):
    def __init__(self, config: TransformerDenoiserConfig, action_dim: int, cond_dim: int, horizon: int):
        super().__init__()
        d = config.d_model
        self.step_embedding = StepEmbedding(d)
        self.cond_token = nn.Linear(cond_dim, d)
        self.action_in = nn.Linear(action_dim, d)
        self.position = nn.Parameter(torch.zeros(1, horizon + 2, d))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(d, config.num_heads, 4 * d, config.dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, config.num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, action_dim)

    def forward(self, actions: torch.Tensor, timesteps: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        prefix = torch.stack([self.step_embedding(timesteps), self.cond_token(cond)], dim=1)  # (B, 2, d)
        tokens = torch.cat([prefix, self.action_in(actions)], dim=1) + self.position
        return self.head(self.norm(self.encoder(tokens))[:, 2:])


def make_denoiser(name: str, config: object, action_dim: int, cond_dim: int, horizon: int) -> nn.Module:
    """The registered denoiser `name`, built from its own config (the policy config's field of that name)."""
    return DENOISERS.get(name)(config, action_dim, cond_dim, horizon)
