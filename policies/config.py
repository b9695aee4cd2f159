"""Typed configuration shared by every policy: the action window, observation encoders, conditioning.

Each policy extends `PolicyConfig` with its own fields (`policies/diffusion.py`,
`policies/transformer.py`) and registers the dataclass in hydra's ConfigStore as
``policy/<name>_schema``, so ``configs/policy/<name>.yaml`` is type-checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from policies.text_encoder import TEXT_ENCODERS


class NormalizationMode(StrEnum):
    min_max = "min_max"  # [min, max] -> [-1, 1]
    mean_std = "mean_std"  # zero mean, unit standard deviation


@dataclass
class ObsEncoderConfig:
    """How observations become one feature vector per observation step."""

    state_hidden_dim: int = 256  # width of the state MLP
    state_feature_dim: int = 128  # output of the state MLP per observation step
    image_channels: list[int] = field(default_factory=lambda: [32, 64, 128])  # ResNet stages (each halves H, W)
    image_keypoints: int = 32  # spatial-softmax keypoints per camera (2 coordinates each)
    image_feature_dim: int = 64  # output per camera and observation step
    crop_ratio: float = 0.9  # random crop (training) / center crop (inference) of this fraction of H and W


@dataclass
class ConditioningConfig:
    """Which task identity the policy sees: a learned task-index embedding, a frozen text embedding, or both."""

    task_index: bool = True  # learned embedding per task of the training task table
    text: bool = True  # frozen embedding of the instruction, projected by a learned layer
    text_encoder: str = "minilm"  # a registered text encoder (policies.text_encoder): minilm (offline), clip (hub)
    dim: int = 64  # size of each of the two conditioning vectors

    def __post_init__(self) -> None:
        if not (self.task_index or self.text):
            raise ValueError("conditioning needs task_index=true, text=true or both")
        if self.text_encoder not in TEXT_ENCODERS:
            raise ValueError(f"unknown text encoder {self.text_encoder!r}; known: {', '.join(TEXT_ENCODERS.names())}")


@dataclass
class PolicyConfig:
    """Fields every registered policy has. `name` selects the registry entry."""

    name: str = "diffusion"
    n_obs_steps: int = 2  # To
    horizon: int = 16  # T: actions predicted per chunk
    n_action_steps: int = 8  # Ta: actions executed per chunk
    state_normalization: NormalizationMode = NormalizationMode.min_max  # min_max (to [-1, 1]) or mean_std
    action_normalization: NormalizationMode = NormalizationMode.min_max
    obs_encoder: ObsEncoderConfig = field(default_factory=ObsEncoderConfig)
    conditioning: ConditioningConfig = field(default_factory=ConditioningConfig)

    def __post_init__(self) -> None:
        if self.n_obs_steps < 1 or not 1 <= self.n_action_steps <= self.horizon:
            raise ValueError(f"need n_obs_steps >= 1 and 1 <= n_action_steps <= horizon, got n_obs_steps="
                             f"{self.n_obs_steps}, horizon={self.horizon}, n_action_steps={self.n_action_steps}")
