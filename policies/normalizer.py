"""Normalisation that lives in the policy's state dict, so statistics travel with the weights.

    normalizer = Normalizer({"action": ("min_max", 4), "obs.state": ("mean_std", 39)})
    normalizer.fit(stats)               # stats[key] = {"min", "max", "mean", "std"} arrays, e.g. from
                                        # datasets.statistics.load_or_compute_statistics
    y = normalizer.normalize("action", actions)      # (..., Da) -> (..., Da) in [-1, 1]
    actions = normalizer.unnormalize("action", y)

Each key is an affine map y = x * scale + offset kept as buffers ``<key>.scale`` / ``<key>.offset``.
"min_max" maps [min, max] to [-1, 1]; "mean_std" maps to zero mean, unit std. Dimensions that
do not vary in the data (a range or std below `eps`) are only shifted, never blown up, and
`unnormalize` returns their constant whatever the policy predicts: an action the demonstrations
never use (e.g. LIBERO rotations of scripted pick-and-place) stays exactly at its value instead of
drifting with the prediction error. The mask is buffer ``<key>.constant``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

MODES = ("min_max", "mean_std")


class Normalizer(nn.Module):
    def __init__(self, spec: Mapping[str, tuple[str, int]], eps: float = 1e-4):
        super().__init__()
        self.modes = {}
        for key, (mode, dim) in spec.items():
            if mode not in MODES:
                raise ValueError(f"normalisation mode of {key!r} must be one of {MODES}, got {mode!r}")
            self.modes[key] = mode
            self.register_buffer(self._name(key, "scale"), torch.ones(dim))
            self.register_buffer(self._name(key, "offset"), torch.zeros(dim))
            self.register_buffer(self._name(key, "constant"), torch.zeros(dim, dtype=torch.bool))
        self.eps = eps
        self.register_load_state_dict_pre_hook(_no_constant_dims_in_older_checkpoints)

    @staticmethod
    def _name(key: str, part: str) -> str:
        return f"{key.replace('.', '__')}__{part}"  # buffer names may not contain dots

    def _affine(self, key: str) -> tuple[torch.Tensor, torch.Tensor]:
        if key not in self.modes:
            raise KeyError(f"no normalisation for {key!r}; known keys: {sorted(self.modes)}")
        return getattr(self, self._name(key, "scale")), getattr(self, self._name(key, "offset"))

    @torch.no_grad()
    def fit(self, stats: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        """Set every key's map from its statistics (arrays of shape (D,))."""
        for key, mode in self.modes.items():
            if key not in stats:
                raise KeyError(f"statistics have no entry for {key!r}; they have {sorted(stats)}")
            scale, offset = self._affine(key)
            s = {name: torch.as_tensor(np.asarray(value), dtype=torch.float32) for name, value in stats[key].items()}
            if s.get("min", s.get("mean")).shape != scale.shape:
                raise ValueError(f"statistics of {key!r} have shape {tuple(s.get('min', s.get('mean')).shape)}, "
                                 f"the normaliser expects {tuple(scale.shape)}")
            if mode == "min_max":
                half_range = (s["max"] - s["min"]) / 2
                center = (s["max"] + s["min"]) / 2
            else:
                half_range, center = s["std"], s["mean"]
            new_scale = torch.where(half_range > self.eps, 1 / half_range.clamp_min(self.eps), torch.ones_like(center))
            scale.copy_(new_scale)
            offset.copy_(-center * new_scale)
            getattr(self, self._name(key, "constant")).copy_(half_range <= self.eps)

    def normalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        """(..., D) raw -> (..., D) normalised."""
        scale, offset = self._affine(key)
        return x * scale + offset

    def unnormalize(self, key: str, y: torch.Tensor) -> torch.Tensor:
        """(..., D) normalised -> (..., D) raw."""
        scale, offset = self._affine(key)
        constant = getattr(self, self._name(key, "constant"))
        return torch.where(constant, -offset / scale, (y - offset) / scale)


def _no_constant_dims_in_older_checkpoints(module: Normalizer, state_dict: dict, prefix: str, *args) -> None:
    """Checkpoints written before the ``constant`` masks existed load with no dimension pinned."""
    for key in module.modes:
        name = module._name(key, "constant")
        state_dict.setdefault(prefix + name, torch.zeros_like(getattr(module, name)))
