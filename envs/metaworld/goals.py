"""The fixed goal variations of Meta-World's multitask benchmarks.

Meta-World's MT1 / MT10 / MT50 benchmark classes draw 50 goal variations (`rand_vec`) per
task from numpy's global RNG, seeded by the benchmark seed; one draw depends on all the
tasks before it, and building MT50 takes about a minute. The official tables for the
default seed are shipped in `envs/data/metaworld_goals.npz` (made by
`python -m scripts.make_metaworld_goals`, checked against metaworld by a slow test);
any other seed is computed once and cached under `~/.cache/mtpolicy/`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from common.atomic import atomic_path

log = logging.getLogger(__name__)

GOALS_PER_TASK = 50
DEFAULT_GOAL_SEED = 0
SHIPPED_TABLE = Path(__file__).parent / "data" / "metaworld_goals.npz"
BENCHMARKS = ("MT1", "MT10", "MT50")


def _key(benchmark: str, task: str, seed: int) -> str:
    return f"{benchmark}/seed{seed}/{task}"


def compute_goals(benchmark: str, tasks: list[str], seed: int) -> dict[str, np.ndarray]:
    """Build metaworld's benchmark object and read its goal vectors (slow: seconds per task).

    Returns:
        task name -> rand_vec array (50, Dg) float64, in metaworld's own order.
    """
    import metaworld  # deferred: importing metaworld costs a second

    if benchmark == "MT1":
        bench_per_task = {task: metaworld.MT1(task, seed=seed) for task in tasks}
    elif benchmark in ("MT10", "MT50"):
        shared = getattr(metaworld, benchmark)(seed=seed)
        bench_per_task = {task: shared for task in tasks}
    else:
        raise ValueError(f"unknown Meta-World benchmark {benchmark!r}; known: {BENCHMARKS}")
    import pickle

    goals = {}
    for task, bench in bench_per_task.items():
        vecs = [pickle.loads(t.data)["rand_vec"] for t in bench.train_tasks if t.env_name == task]
        if len(vecs) != GOALS_PER_TASK:
            raise ValueError(f"{benchmark} has {len(vecs)} goal variations for {task}, expected {GOALS_PER_TASK}")
        goals[task] = np.stack(vecs)
    return goals


def _cache_path(benchmark: str, seed: int) -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mtpolicy"
    return root / f"metaworld_goals_{benchmark}_seed{seed}.npz"


def _load_table(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    with np.load(path) as table:
        return {key: table[key] for key in table.files}


def official_goals(benchmark: str, tasks: list[str], seed: int = DEFAULT_GOAL_SEED) -> dict[str, np.ndarray]:
    """Goal variations of `tasks` under `benchmark` (MT1, MT10 or MT50) and `seed`.

    Returns:
        task name -> rand_vec array (50, Dg) float64.
    """
    shipped = _load_table(SHIPPED_TABLE)
    cache_path = _cache_path(benchmark, seed)
    cached = _load_table(cache_path)
    found = {}
    for task in tasks:
        key = _key(benchmark, task, seed)
        if key in shipped:
            found[task] = shipped[key]
        elif key in cached:
            found[task] = cached[key]
    missing = [t for t in tasks if t not in found]
    if missing:
        log.info("computing %s goal variations (seed %d) for %d tasks; cached in %s",
                 benchmark, seed, len(missing), cache_path)
        computed = compute_goals(benchmark, missing, seed)
        found.update(computed)
        cached.update({_key(benchmark, t, seed): v for t, v in computed.items()})
        with atomic_path(cache_path) as tmp:
            np.savez(tmp, **cached)
    return {task: found[task] for task in tasks}
