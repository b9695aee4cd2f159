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


class TaskStratifiedBatchSampler(Sampler[list[int]]):
    """Global batches of `tasks_per_batch` tasks with an equal share of windows each, a pure function of
    (seed, step, rank), for methods that need a loss per task from every batch.

    The tasks are visited in a fresh permutation each round (all tasks, `tasks_per_batch` at a time); each
    chosen task gets global_batch // tasks_per_batch windows drawn uniformly from its own (the remainder goes
    to the first tasks of the step). Rank r takes every world_size-th index of the global batch.
    """

    def __init__(self, task_of_sample: torch.Tensor, tasks_per_batch: int, batch_size: int, num_steps: int,
                 seed: int, start_step: int = 0, rank: int = 0, world_size: int = 1):
        task_of_sample = torch.as_tensor(task_of_sample)
        self.tasks = torch.unique(task_of_sample)
        if not 1 <= tasks_per_batch <= len(self.tasks):
            raise ValueError(f"tasks_per_batch must be in 1..{len(self.tasks)} (the tasks in the data), got "
                             f"{tasks_per_batch}")
        self.global_batch = batch_size * world_size
        if self.global_batch < tasks_per_batch:
            raise ValueError(f"a batch of {self.global_batch} cannot hold {tasks_per_batch} tasks")
        self.windows = [torch.nonzero(task_of_sample == t).flatten() for t in self.tasks]
        self.tasks_per_batch, self.num_steps, self.seed = tasks_per_batch, num_steps, seed
        self.start_step, self.rank, self.world_size = start_step, rank, world_size

    def batch(self, step: int) -> list[int]:
        """The global batch of `step`, task by task."""
        first = step * self.tasks_per_batch
        round_, offset = divmod(first, len(self.tasks))
        order = torch.randperm(len(self.tasks), generator=torch.Generator().manual_seed(self.seed * 7_919 + round_))
        if offset + self.tasks_per_batch > len(self.tasks):  # the round ends inside this step: next round's too
            following = torch.randperm(len(self.tasks),
                                       generator=torch.Generator().manual_seed(self.seed * 7_919 + round_ + 1))
            order = torch.cat([order, following])
        chosen = order[offset:offset + self.tasks_per_batch]
        shares = [self.global_batch // self.tasks_per_batch + (i < self.global_batch % self.tasks_per_batch)
                  for i in range(self.tasks_per_batch)]
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        indices = []
        for task, share in zip(chosen.tolist(), shares):
            own = self.windows[task]
            indices += own[torch.randint(len(own), (share,), generator=generator)].tolist()
        return indices

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start_step, self.num_steps):
            yield self.batch(step)[self.rank::self.world_size]

    def __len__(self) -> int:
        return self.num_steps - self.start_step
