"""Training batches as a pure function of (seed, step, rank): the root of exact resume."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class StepBatchSampler(Sampler[list[int]]):
    """Index batches for steps start_step..num_steps-1, each a pure function of (seed, step, rank).

    Every epoch is a fresh permutation of the samples (or, with `weights`, as many weighted draws
    with replacement), cut into global batches of batch_size x world_size; rank r takes every
    world_size-th index of each. Datasets smaller than one global batch are drawn with replacement.
    """

    def __init__(self, num_samples: int, batch_size: int, num_steps: int, seed: int, start_step: int = 0,
                 weights: torch.Tensor | None = None, rank: int = 0, world_size: int = 1):
        self.num_samples, self.batch_size, self.num_steps = num_samples, batch_size, num_steps
        self.seed, self.start_step, self.weights = seed, start_step, weights
        self.rank, self.world_size = rank, world_size
        self.global_batch = batch_size * world_size
        self.batches_per_epoch = max(1, num_samples // self.global_batch)

    def _epoch(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        draws = self.batches_per_epoch * self.global_batch
        if self.weights is not None:
            return torch.multinomial(self.weights, draws, replacement=True, generator=generator)
        if self.num_samples < draws:
            return torch.randint(self.num_samples, (draws,), generator=generator)
        return torch.randperm(self.num_samples, generator=generator)[:draws]

    def __iter__(self) -> Iterator[list[int]]:
        epoch, order = -1, None
        for step in range(self.start_step, self.num_steps):
            if step // self.batches_per_epoch != epoch:
                epoch = step // self.batches_per_epoch
                order = self._epoch(epoch)
            start = (step % self.batches_per_epoch) * self.global_batch
            yield order[start + self.rank:start + self.global_batch:self.world_size].tolist()

    def __len__(self) -> int:
        return self.num_steps - self.start_step
