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

A policy trained across suites keeps one map per suite (``groups``; buffers (G, D)) and says per row which
(``group``, (B,) int64): each suite is fitted to its own statistics, which may cover fewer dimensions than
the padded D; the rest map 0 to 0 and are constant.

    normalizer = Normalizer({"action": ("min_max", 7)}, groups=2)
    normalizer.fit(mt10_stats, group=0)              # action stats of 4 dimensions: 4..6 pinned at 0
    normalizer.fit(libero_stats, group=1)
    y = normalizer.normalize("action", actions, group=suite_index)   # (B, ..., 7), suite_index (B,)
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

MODES = ("min_max", "mean_std")
PARTS = ("scale", "offset", "constant")


class Normalizer(nn.Module):
    def __init__(self, spec: Mapping[str, tuple[str, int]], eps: float = 1e-4, groups: int = 1):
        super().__init__()
        if groups < 1:
            raise ValueError(f"groups must be >= 1, got {groups}")
        self.modes, self.groups = {}, groups
        for key, (mode, dim) in spec.items():
            if mode not in MODES:
                raise ValueError(f"normalisation mode of {key!r} must be one of {MODES}, got {mode!r}")
            self.modes[key] = mode
            self.register_buffer(self._name(key, "scale"), torch.ones(groups, dim))
            self.register_buffer(self._name(key, "offset"), torch.zeros(groups, dim))
            self.register_buffer(self._name(key, "constant"), torch.zeros(groups, dim, dtype=torch.bool))
        self.eps = eps
        self.register_load_state_dict_pre_hook(_older_checkpoints)

    @staticmethod
    def _name(key: str, part: str) -> str:
        return f"{key.replace('.', '__')}__{part}"  # buffer names may not contain dots

    def _maps(self, key: str, group: torch.Tensor | None, ndim: int) -> list[torch.Tensor]:
        """scale, offset and constant of `key`, shaped to broadcast over an (..., D) input of `ndim` dims:
        (D,) with no group, (B, 1, ..., D) with a group per row."""
        if key not in self.modes:
            raise KeyError(f"no normalisation for {key!r}; known keys: {sorted(self.modes)}")
        maps = [getattr(self, self._name(key, part)) for part in PARTS]
        if group is None:
            if self.groups != 1:
                raise ValueError(f"this normaliser holds statistics of {self.groups} suites: pass each row's "
                                 "group (the batch's suite.index)")
            return [m[0] for m in maps]
        shape = (len(group),) + (1,) * (ndim - 2) + (maps[0].shape[1],)
        return [m[group].view(shape) for m in maps]

    @torch.no_grad()
    def fit(self, stats: Mapping[str, Mapping[str, np.ndarray]], group: int = 0) -> None:
        """Set every key's map of `group` from its statistics (arrays of shape (D,); with several groups a
        group's statistics may cover the first d <= D dimensions, the rest then map 0 to 0)."""
        if not 0 <= group < self.groups:
            raise ValueError(f"group must be in 0..{self.groups - 1}, got {group}")
        for key, mode in self.modes.items():
            if key not in stats:
                raise KeyError(f"statistics have no entry for {key!r}; they have {sorted(stats)}")
            scale, offset, constant = (getattr(self, self._name(key, part))[group] for part in PARTS)
            s = {name: torch.as_tensor(np.asarray(value), dtype=torch.float32) for name, value in stats[key].items()}
            dim = s.get("min", s.get("mean")).shape
            if len(dim) != 1 or dim[0] > scale.shape[0] or (self.groups == 1 and dim != scale.shape):
                raise ValueError(f"statistics of {key!r} have shape {tuple(dim)}, the normaliser expects "
                                 f"({scale.shape[0]},)" + (" or fewer dimensions" if self.groups > 1 else ""))
            if mode == "min_max":
                half_range = (s["max"] - s["min"]) / 2
                center = (s["max"] + s["min"]) / 2
            else:
                half_range, center = s["std"], s["mean"]
            new_scale = torch.where(half_range > self.eps, 1 / half_range.clamp_min(self.eps), torch.ones_like(center))
            d = dim[0]
            scale[:d], offset[:d], constant[:d] = new_scale, -center * new_scale, half_range <= self.eps
            scale[d:], offset[d:], constant[d:] = 1.0, 0.0, True  # padding: 0 stays 0

    def normalize(self, key: str, x: torch.Tensor, group: torch.Tensor | None = None) -> torch.Tensor:
        """(B, ..., D) raw -> (B, ..., D) normalised; `group` (B,): each row's group (None with one group)."""
        scale, offset, _ = self._maps(key, group, x.dim())
        return x * scale + offset

    def unnormalize(self, key: str, y: torch.Tensor, group: torch.Tensor | None = None) -> torch.Tensor:
        """(B, ..., D) normalised -> (B, ..., D) raw; `group` as in `normalize`."""
        scale, offset, constant = self._maps(key, group, y.dim())
        return torch.where(constant, -offset / scale, (y - offset) / scale)


def _older_checkpoints(module: Normalizer, state_dict: dict, prefix: str, *args) -> None:
    """Checkpoints from before groups held (D,) maps (one group), and those from before the ``constant`` masks
    existed load with no dimension pinned."""
    for key in module.modes:
        for part in PARTS:
            name = prefix + module._name(key, part)
            if name in state_dict and state_dict[name].dim() == 1 and module.groups == 1:
                state_dict[name] = state_dict[name][None]
        name = module._name(key, "constant")
        state_dict.setdefault(prefix + name, torch.zeros_like(getattr(module, name)))
