"""Training windows of several suites in one table, for one policy across suites (e.g. MT10 with LIBERO-Object).

    parts = [MultitaskSequenceDataset(mt10_config), MultitaskSequenceDataset(libero_config)]
    dataset = JointDataset(parts, tasks_per_suite=[10, 10])
    dataset[i]      # a window of one part, padded to the largest suite (keys of datasets.sequence_dataset):
                    #   obs.state (To, max Ds) and action (T, max Da) padded with zeros,
                    #   obs.rgb.<camera> zeros for a camera its suite lacks,
                    #   task.index shifted past the earlier suites' tasks, suite.index its part

The policy reads `suite.index` to leave the padding alone (`policies.base`); each part keeps its own
statistics (`datasets.statistics`), fitted per suite.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from common.schema import ACTION, OBS_STATE, SUITE_INDEX, TASK_INDEX, rgb_key
from datasets.reader import DatasetError
from datasets.sequence_dataset import MultitaskSequenceDataset


class JointDataset(Dataset):
    """The windows of every part, part after part; see the module docstring.

    Attributes:
        parts: one `MultitaskSequenceDataset` per suite, in the order of `suite.index`.
        task_offsets: (S,) where each suite's task indices start in the joint task table.
        task_of_sample: (N,) int64, the joint task index of each window (for balanced sampling).
        suite_of_sample: (N,) int64, the part (suite index) of each window.
        image_shapes: camera -> (3, H, W), the cameras of every part.
    """

    def __init__(self, parts: list[MultitaskSequenceDataset], tasks_per_suite: list[int]):
        if len(parts) != len(tasks_per_suite) or not parts:
            raise ValueError(f"need one task count per part, got {len(parts)} parts and {len(tasks_per_suite)} counts")
        windows = {(p.n_obs_steps, p.horizon, p.n_action_steps) for p in parts}
        if len(windows) != 1:
            raise DatasetError(f"the suites' datasets cut windows of different (n_obs_steps, horizon, n_action_steps): "
                               f"{sorted(windows)}")
        self.parts = parts
        self.n_obs_steps, self.horizon, self.n_action_steps = windows.pop()
        self.task_offsets = np.cumsum([0, *tasks_per_suite[:-1]])
        self.image_shapes: dict[str, tuple[int, int, int]] = {}
        for part in parts:
            for camera, shape in part.image_shapes.items():
                if self.image_shapes.setdefault(camera, shape) != shape:
                    raise DatasetError(f"camera {camera!r} has frames of {self.image_shapes[camera]} in one dataset "
                                       f"and {shape} in {part.root}")
        self.state_dim = max(p.state_dim for p in parts)
        self.action_dim = max(p.action_dim for p in parts)
        self._starts = np.cumsum([0, *[len(p) for p in parts]])
        self.suite_of_sample = np.repeat(np.arange(len(parts)), [len(p) for p in parts])
        self.task_of_sample = np.concatenate([p.task_of_sample + o for p, o in zip(parts, self.task_offsets)])
        self.tasks = [(i + o, name, instruction) for p, o in zip(parts, self.task_offsets)
                      for i, name, instruction in p.tasks]

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, index: int) -> dict[str, Any]:
        suite = int(np.searchsorted(self._starts, index, side="right")) - 1
        sample = self.parts[suite][index - int(self._starts[suite])]
        sample[OBS_STATE] = _pad(sample[OBS_STATE], self.state_dim)
        sample[ACTION] = _pad(sample[ACTION], self.action_dim)
        steps = len(sample[OBS_STATE])
        for camera, shape in self.image_shapes.items():
            if rgb_key(camera) not in sample:
                sample[rgb_key(camera)] = torch.zeros(steps, *shape, dtype=torch.uint8)
        sample[TASK_INDEX] = sample[TASK_INDEX] + int(self.task_offsets[suite])
        sample[SUITE_INDEX] = torch.tensor(suite)
        return sample

    @property
    def root(self) -> str:
        """The parts' folders, for the record of what a run was trained on."""
        return " + ".join(str(p.root) for p in self.parts)

    def close(self) -> None:
        for part in self.parts:
            part.close()


def _pad(values: torch.Tensor, dim: int) -> torch.Tensor:
    """(L, d) -> (L, dim): zeros after the last dimension."""
    return torch.cat([values, values.new_zeros(len(values), dim - values.shape[-1])], dim=-1)
