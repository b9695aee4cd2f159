"""Sampling that gives every task the same share of a batch, whatever its number of windows."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler

from datasets.sequence_dataset import MultitaskSequenceDataset


def task_balanced_sampler(dataset: MultitaskSequenceDataset, num_samples: int | None = None,
                          generator: torch.Generator | None = None) -> WeightedRandomSampler:
    """Draw windows with replacement so that each task has equal total weight.

    Args:
        dataset: exposes ``task_of_sample`` (N,), the task index of each window.
        num_samples: draws per epoch; None: ``len(dataset)``.
        generator: torch RNG for reproducible draws.
    """
    tasks = np.asarray(dataset.task_of_sample)
    windows_per_task = np.bincount(tasks)
    weights = 1.0 / windows_per_task[tasks]  # each task's weights sum to 1
    return WeightedRandomSampler(torch.from_numpy(weights), num_samples=num_samples or len(tasks),
                                 replacement=True, generator=generator)
