"""Regenerates the shipped table of Meta-World goal variations (about two minutes).

    python -m scripts.make_metaworld_goals

Writes envs/data/metaworld_goals.npz with the MT1, MT10 and MT50 goal vectors of the
default seed, exactly as metaworld's own benchmark classes draw them.
"""

from __future__ import annotations

import numpy as np
from metaworld.env_dict import ALL_V3_ENVIRONMENTS, MT10_V3

from envs.metaworld.goals import DEFAULT_GOAL_SEED, SHIPPED_TABLE, _key, compute_goals


def main() -> None:
    table = {}
    suites = {"MT1": list(ALL_V3_ENVIRONMENTS), "MT10": list(MT10_V3), "MT50": list(ALL_V3_ENVIRONMENTS)}
    for benchmark, tasks in suites.items():
        goals = compute_goals(benchmark, tasks, DEFAULT_GOAL_SEED)
        table.update({_key(benchmark, task, DEFAULT_GOAL_SEED): vecs for task, vecs in goals.items()})
        print(f"{benchmark}: {len(goals)} tasks")
    SHIPPED_TABLE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(SHIPPED_TABLE, **table)
    print(f"wrote {SHIPPED_TABLE}")


if __name__ == "__main__":
    main()
