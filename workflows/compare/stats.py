"""Statistics of a comparison: success rates and paired differences with hierarchical bootstrap intervals.

Outcomes are counted per cell (training seed s, task t): a success rate scores each episode 1 or 0; a paired
difference scores each (seed, task, episode) the method and the baseline both ran as +1 (only the method
succeeded), -1 (only the baseline did) or 0 (both, or neither). The estimate is the mean over cells of the
cell means: every task weighs the same, as in results.json's suite mean, and so does every seed.

The interval resamples what varies between repetitions of the experiment, at every level that has more than
one unit: training seeds, then tasks, then episodes within each (seed, task) cell (the goal variations). A
paired difference keeps its pairs together, so what the goals have in common for both methods cancels out.
The two-sided p-value is read off the same bootstrap distribution: the smallest level at which the interval
would exclude 0. So "the 95% interval excludes 0" and "p < 0.05" say the same thing.

    cells = difference_cells(method_outcomes, baseline_outcomes, tasks)
    result = hierarchical_bootstrap(cells)      # result.estimate, result.low, result.high, result.p_value
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# (training seed, task, episode) -> success; the evaluation is a function of these three, so equal keys of two
# runs mean the same goal (or init state) under the same evaluation seed.
Outcomes = Mapping[tuple[int, str, int], bool]

CHUNK = 2_000  # bootstrap replicates drawn at once: bounds memory for many seeds x tasks


@dataclass(frozen=True)
class CellCounts:
    """Episode scores per cell: `n[s, t]` episodes of seed `seeds[s]` on task `tasks[t]`, of which `pos[s, t]`
    score +1 and `neg[s, t]` score -1 (the rest 0). Cells with n == 0 hold no data and weigh nothing."""

    seeds: tuple[int, ...]
    tasks: tuple[str, ...]
    n: np.ndarray  # (S, T) int
    pos: np.ndarray  # (S, T) int
    neg: np.ndarray  # (S, T) int

    @property
    def episodes(self) -> int:
        return int(self.n.sum())

    def cell_means(self) -> np.ndarray:
        """(S, T) mean score of each cell; NaN where a cell is empty."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n > 0, (self.pos - self.neg) / np.maximum(self.n, 1), np.nan)

    def estimate(self) -> float:
        """The mean over non-empty cells of the cell means."""
        if not (self.n > 0).any():
            raise ValueError("no episodes to estimate from")
        return float(np.nanmean(self.cell_means()))

    def task(self, name: str) -> CellCounts:
        """The cells of one task."""
        t = self.tasks.index(name)
        return CellCounts(self.seeds, (name,), self.n[:, t:t + 1], self.pos[:, t:t + 1], self.neg[:, t:t + 1])


def _cells(scores: Mapping[tuple[int, str, int], int], tasks: Sequence[str]) -> CellCounts:
    seeds = tuple(sorted({seed for seed, _, _ in scores}))
    shape = (len(seeds), len(tasks))
    n, pos, neg = np.zeros(shape, int), np.zeros(shape, int), np.zeros(shape, int)
    row, column = {s: i for i, s in enumerate(seeds)}, {t: j for j, t in enumerate(tasks)}
    for (seed, task, _), score in scores.items():
        if task not in column:
            continue
        cell = (row[seed], column[task])
        n[cell] += 1
        pos[cell] += score > 0
        neg[cell] += score < 0
    return CellCounts(seeds, tuple(tasks), n, pos, neg)


def rate_cells(outcomes: Outcomes, tasks: Sequence[str]) -> CellCounts:
    """Success counts per (seed, task) of one method's episodes."""
    return _cells({key: int(success) for key, success in outcomes.items()}, tasks)


def difference_cells(method: Outcomes, baseline: Outcomes, tasks: Sequence[str]) -> CellCounts:
    """Paired scores (method - baseline) on the (seed, task, episode) keys both have; the rest is left out."""
    shared = method.keys() & baseline.keys()
    return _cells({key: int(method[key]) - int(baseline[key]) for key in shared}, tasks)


@dataclass(frozen=True)
class BootstrapResult:
    estimate: float
    low: float
    high: float
    p_value: float  # two-sided, of "the mean is 0"; meaningful for differences, not for rates
    resamples: int

    def verdict(self) -> str:
        """'higher' or 'lower' when the interval excludes 0, else 'no significant difference'."""
        if self.low > 0:
            return "higher"
        if self.high < 0:
            return "lower"
        return "no significant difference"


def _unit_weights(rng: np.random.Generator, units: int, size: int) -> np.ndarray:
    """(size, units) how often each unit is drawn in each replicate; all ones when there is one unit."""
    if units == 1:
        return np.ones((size, 1))
    return rng.multinomial(units, np.full(units, 1.0 / units), size=size).astype(float)


def _replicates(cells: CellCounts, rng: np.random.Generator, size: int) -> np.ndarray:
    """`size` bootstrap replicates of the estimate (NaN where a replicate drew only empty cells)."""
    n, pos, neg = cells.n, cells.pos, cells.neg
    rest = n - pos
    # Resampling a cell's episodes with replacement = multinomial counts of its +1 / -1 / 0 scores.
    new_pos = rng.binomial(n, pos / np.maximum(n, 1), size=(size, *n.shape))
    new_neg = rng.binomial(n - new_pos, np.where(rest > 0, neg / np.maximum(rest, 1), 0.0))
    means = (new_pos - new_neg) / np.maximum(n, 1)
    weights = (_unit_weights(rng, n.shape[0], size)[:, :, None] * _unit_weights(rng, n.shape[1], size)[:, None, :]
               * (n > 0))
    total = weights.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (weights * means).sum(axis=(1, 2)) / total, np.nan)


def hierarchical_bootstrap(cells: CellCounts, confidence: float = 0.95, resamples: int = 10_000,
                           seed: int = 0) -> BootstrapResult:
    """Percentile bootstrap interval and two-sided p-value of `cells.estimate()`, resampling seeds, tasks and
    episodes (each level with more than one unit). Deterministic given `seed`.

    Raises:
        ValueError: no episodes, or a confidence outside (0, 1).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    estimate = cells.estimate()
    rng = np.random.default_rng(seed)
    replicates = np.concatenate([_replicates(cells, rng, min(CHUNK, resamples - start))
                                 for start in range(0, resamples, CHUNK)])
    replicates = replicates[~np.isnan(replicates)]
    low, high = np.quantile(replicates, [(1 - confidence) / 2, (1 + confidence) / 2])
    count = len(replicates) + 1
    below, above = (1 + np.sum(replicates <= 0)) / count, (1 + np.sum(replicates >= 0)) / count
    return BootstrapResult(estimate, float(low), float(high), float(min(1.0, 2 * min(below, above))), resamples)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment: controls the chance of any false "significant" among the comparisons."""
    order = np.argsort(p_values)
    adjusted, running = np.empty(len(p_values)), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted.tolist()
