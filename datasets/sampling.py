"""How often training draws each window: uniformly, or so that every task gets the same share; in a joint
table of several suites, optionally with a set share of the draws per suite."""

from __future__ import annotations

import numpy as np
import torch

from datasets.joint import JointDataset
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


def suite_shared_weights(dataset: JointDataset, task_balanced: bool,
                         shares: list[float | None]) -> torch.Tensor | None:
    """The trainer's `sample_weights` for a joint table: `sample_weights` (uniform over windows, or equal for
    every task of every suite), then each suite with a share in `shares` (one per part, each in (0, 1), summing
    below 1) rescaled to that share of the draws; the suites without one split the rest as they had it."""
    weights = sample_weights(dataset, task_balanced)
    if all(share is None for share in shares):
        return weights
    if len(shares) != len(dataset.parts):
        raise ValueError(f"need one share (or None) per suite: {len(dataset.parts)} suites, {len(shares)} shares")
    if weights is None:
        weights = torch.full((len(dataset),), 1.0 / len(dataset), dtype=torch.float64)
    suite = torch.from_numpy(dataset.suite_of_sample)
    had = torch.stack([weights[suite == s].sum() for s in range(len(shares))])
    unset = [s for s, share in enumerate(shares) if share is None]
    rest = 1.0 - sum(share for share in shares if share is not None)
    if not unset or rest <= 0:
        raise ValueError(f"the suites' shares of the draws {shares} leave nothing to the suites without one")
    scale = torch.stack([share / had[s] if share is not None else rest / had[unset].sum()
                         for s, share in enumerate(shares)])
    return weights * scale[suite]


def suite_shares(dataset: JointDataset, weights: torch.Tensor | None) -> list[float]:
    """Each suite's share of the draws under `weights` (None: uniform over windows)."""
    if weights is None:
        return [len(part) / len(dataset) for part in dataset.parts]
    suite = torch.from_numpy(dataset.suite_of_sample)
    return [float(weights[suite == s].sum() / weights.sum()) for s in range(len(dataset.parts))]
