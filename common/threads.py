"""Compute threads that fit the machine as it is: free cores, and OpenMP that does not spin for long.

Torch's OpenMP threads (GNU libgomp) spin for a long while before they sleep: two trainings on two
cores, each with two spinning threads, slow each other several-fold (measured side by side by
`python -m bench.train_contention`; figures in docs/benchmarks.md). Two remedies, both defaults here:

- `limit_openmp_spinning()` caps the spin at GOMP_SPINCOUNT=1000 iterations (unless the user set
  GOMP_SPINCOUNT or OMP_WAIT_POLICY). libgomp reads the variable when torch loads it, so the entry
  points call this first.
- `training_threads()` gives torch the cores that are idle when training starts (sampled from
  /proc/stat), so a run started beside a busy one takes one thread.
"""

from __future__ import annotations

import logging
import os
import time

log = logging.getLogger(__name__)

SPIN_COUNT = "1000"  # libgomp's spin iterations before a waiting thread sleeps (its default is 300,000)


def limit_openmp_spinning() -> None:
    """Set GOMP_SPINCOUNT unless the user chose a wait policy; call before torch is first imported."""
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ.setdefault("GOMP_SPINCOUNT", SPIN_COUNT)


def usable_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _cpu_times() -> tuple[float, float] | None:
    """(idle, total) jiffies of all cores from /proc/stat; None where there is none."""
    try:
        with open("/proc/stat") as stat:
            fields = [float(x) for x in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return fields[3] + fields[4], sum(fields[:8])  # idle + iowait; user..steal


def free_cores(sample_s: float = 0.25) -> int:
    """Cores idle over a short sample (this process sleeps meanwhile); all usable cores where unknown."""
    before = _cpu_times()
    time.sleep(sample_s)
    after = _cpu_times()
    cores = usable_cores()
    if before is None or after is None or after[1] <= before[1]:
        return cores
    idle_share = (after[0] - before[0]) / (after[1] - before[1])
    return max(1, min(cores, round(idle_share * (os.cpu_count() or cores))))


def training_threads(requested: int = 0) -> int:
    """`requested` if > 0 (the user's choice), else the cores free right now (at least one)."""
    if requested > 0:
        return requested
    free, cores = free_cores(), usable_cores()
    if free < cores:
        log.info("%d of %d cores are busy: training with %d torch thread(s)", cores - free, cores, free)
    return free
