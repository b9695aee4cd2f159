"""Meta-World's scripted experts (`metaworld.policies`, one per task) as one batched ChunkPolicy."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from metaworld.policies import ENV_POLICY_MAP

from common.schema import OBS_STATE, TASK_INDEX, Task

# metaworld's experts warn whenever their gains saturate; the actions are clipped to [-1, 1] anyway.
warnings.filterwarnings("ignore", message=r"Constant\(s\) may be too high", module="metaworld")


class MetaWorldExpertPolicy:
    """Meta-World's hand-written expert of each task, batched over a mixed-task batch.

    Needs only the current state: n_obs_steps = 1, and it returns chunks of one action. It runs in the
    rollout workers, next to the envs (cheap per-sample Python: no round trip to the engine per step).
    """

    n_obs_steps = 1
    n_action_steps = 1
    runs_in_worker = True

    def __init__(self, tasks: list[Task]):
        missing = [t.name for t in tasks if t.name not in ENV_POLICY_MAP]
        if missing:
            raise ValueError(f"no Meta-World expert for tasks {missing}")
        self.tasks = tasks
        self.experts = {t.index: ENV_POLICY_MAP[t.name]() for t in tasks}

    def predict_action_chunk(self, batch: dict[str, Any]) -> np.ndarray:
        """obs.state (B, To, 39), task.index (B,) -> actions (B, 1, 4) float32."""
        states = np.asarray(batch[OBS_STATE])
        actions = [self.experts[int(i)].get_action(state[-1].astype(np.float64))
                   for i, state in zip(batch[TASK_INDEX], states)]
        return np.clip(np.stack(actions), -1.0, 1.0).astype(np.float32)[:, None, :]
