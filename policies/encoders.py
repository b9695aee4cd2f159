"""Observation encoders: a state MLP and, per camera, a small ResNet with GroupNorm and spatial softmax.

    encoder = ObservationEncoder(config, state_dim=39, image_shapes={"corner": (3, 128, 128)})
    features = encoder(states, images)     # (B, To, Ds), {camera: (B, To, 3, H, W) in [0, 1]} -> (B, To, F)

Images are cropped to `crop_ratio` of their size: at a random place per sample while training
(the augmentation of Diffusion Policy), at the center otherwise.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from policies.config import ObsEncoderConfig


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels // 4) or 1, channels)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with GroupNorm; the first one may halve H and W."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.norm1 = group_norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.norm2 = group_norm(out_channels)
        self.shortcut = (nn.Identity() if stride == 1 and in_channels == out_channels else
                         nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                       group_norm(out_channels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(x)))
        return F.relu(self.norm2(self.conv2(y)) + self.shortcut(x))


class SpatialSoftmax(nn.Module):
    """(N, C, h, w) feature maps -> (N, 2K) expected image coordinates of K learned keypoint maps."""

    def __init__(self, channels: int, keypoints: int):
        super().__init__()
        self.keypoint_maps = nn.Conv2d(channels, keypoints, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.keypoint_maps(x)
        n, k, h, w = maps.shape
        attention = maps.flatten(2).softmax(dim=-1)  # (N, K, h*w)
        ys = torch.linspace(-1, 1, h, device=x.device, dtype=attention.dtype)
        xs = torch.linspace(-1, 1, w, device=x.device, dtype=attention.dtype)
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).reshape(h * w, 2)
        return (attention @ grid).reshape(n, 2 * k)


def crop(images: torch.Tensor, size: tuple[int, int], random: bool) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, h, w): one random window per image, or the center window."""
    n, _, height, width = images.shape
    h, w = size
    if not random:
        top, left = (height - h) // 2, (width - w) // 2
        return images[:, :, top:top + h, left:left + w]
    tops = torch.randint(0, height - h + 1, (n,), device=images.device)
    lefts = torch.randint(0, width - w + 1, (n,), device=images.device)
    rows = (tops[:, None] + torch.arange(h, device=images.device))[:, None, :, None]  # (N, 1, h, 1)
    cols = (lefts[:, None] + torch.arange(w, device=images.device))[:, None, None, :]  # (N, 1, 1, w)
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    return images.permute(0, 2, 3, 1)[batch, rows, cols].squeeze(1).permute(0, 3, 1, 2)


class ImageEncoder(nn.Module):
    """One camera: (N, 3, H, W) in [0, 1] -> (N, image_feature_dim)."""

    def __init__(self, config: ObsEncoderConfig, image_shape: tuple[int, int, int]):
        super().__init__()
        _, height, width = image_shape
        self.crop_size = (max(8, round(height * config.crop_ratio)), max(8, round(width * config.crop_ratio)))
        channels = list(config.image_channels)
        self.stem = nn.Sequential(nn.Conv2d(3, channels[0], 5, 2, 2, bias=False), group_norm(channels[0]), nn.ReLU())
        self.stages = nn.Sequential(*[ResidualBlock(c_in, c_out, 2) for c_in, c_out in
                                      zip(channels[:1] + channels[:-1], channels)])
        self.keypoints = SpatialSoftmax(channels[-1], config.image_keypoints)
        self.head = nn.Sequential(nn.Linear(2 * config.image_keypoints, config.image_feature_dim), nn.ReLU())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        images = crop(images, self.crop_size, random=self.training)
        return self.head(self.keypoints(self.stages(self.stem(images * 2 - 1))))


class ObservationEncoder(nn.Module):
    """Normalised state (B, To, Ds) and images {camera: (B, To, 3, H, W) in [0, 1]} -> (B, To, F)."""

    def __init__(self, config: ObsEncoderConfig, state_dim: int, image_shapes: dict[str, tuple[int, int, int]]):
        super().__init__()
        self.state_mlp = nn.Sequential(nn.Linear(state_dim, config.state_hidden_dim), nn.SiLU(),
                                       nn.Linear(config.state_hidden_dim, config.state_feature_dim))
        self.cameras = list(image_shapes)
        self.image_encoders = nn.ModuleDict({c: ImageEncoder(config, s) for c, s in image_shapes.items()})
        self.image_feature_dim = config.image_feature_dim
        self.feature_dim = config.state_feature_dim + len(self.cameras) * config.image_feature_dim

    def forward(self, states: torch.Tensor, images: dict[str, torch.Tensor],
                present: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """`present`: camera -> (B,) bool, the rows that have the camera (a policy across suites); the others'
        frames are never encoded and their features are zeros. None: every row has every camera. The encoder
        runs even on no rows, so its parameters always get a (zero) gradient, as DistributedDataParallel needs."""
        features = [self.state_mlp(states)]
        for camera in self.cameras:
            frames = images[camera]
            rows = None if present is None else present[camera]
            if rows is None or bool(rows.all()):
                features.append(self._encode(camera, frames))
                continue
            encoded = states.new_zeros(*frames.shape[:2], self.image_feature_dim)
            features.append(encoded.index_put((rows.nonzero()[:, 0],), self._encode(camera, frames[rows]).to(encoded)))
        return torch.cat(features, dim=-1)

    def _encode(self, camera: str, frames: torch.Tensor) -> torch.Tensor:
        """(B, To, 3, H, W) -> (B, To, image_feature_dim)."""
        b, to = frames.shape[:2]
        return self.image_encoders[camera](frames.flatten(0, 1)).unflatten(0, (b, to))
