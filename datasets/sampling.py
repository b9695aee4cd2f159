"""How often training draws each window: uniformly, or so that every task gets the same share."""

from __future__ import annotations

import numpy as np
import torch

from datasets.sequence_dataset import MultitaskSequenceDataset


def task_balanced_weights(dataset: MultitaskSequenceDataset) -> torch.Tensor:
    """(N,) draw probabilities of the windows, equal in total for every task whatever its window count."""
    tasks = np.asarray(dataset.task_of_sample)
    windows_per_task = np.bincount(tasks)
    weights = 1.0 / (windows_per_task[tasks] * np.count_nonzero(windows_per_task))
    return torch.from_numpy(weights)


def sample_weights(dataset: MultitaskSequenceDataset, task_balanced: bool) -> torch.Tensor | None:
    """The trainer's `sample_weights`: task-balanced ones, or None for uniform draws over windows."""
    return task_balanced_weights(dataset) if task_balanced else None
