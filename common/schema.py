"""Names shared by `envs/`, `datasets/` and `policies/`: batch keys, shape letters, the task record.

This is a leaf module: it imports nothing from the project, and the three packages may
all import it (they never import one another).

Shape letters used in docstrings everywhere:
    B  batch              To observation steps (`n_obs_steps`)
    T  horizon            Ta executed actions (`n_action_steps`)
    Da action dim         Ds state dim
    H W image size        E  text-embedding size

Batch keys (a batch is a flat ``dict[str, array]``):
    ``obs.state``          (B, To, Ds) float32
    ``obs.rgb.<camera>``   (B, To, 3, H, W) uint8 on disk and in rollouts, float in [0, 1] in the model
    ``task.index``         (B,) int64, the task's index within its suite
    ``task.embedding``     (B, E) float32, a frozen text embedding of the instruction
    ``suite.index``        (B,) int64, for a policy trained across suites: which of its suites the row is
                           of (`policies.spec.PolicySpec.suites`); its state and action are padded to the
                           largest suite's and cameras its suite lacks hold zeros
    ``action``             (B, T, Da) float32
    ``action.is_pad``      (B, T) bool, True where the window ran past the episode's end
In rollouts the engine also passes, per row, what identifies the moment of the episode:
    ``episode.seed``       (B,) int64, the seed the episode's env was reset with (a function of the run's
                           seed, the task and the episode index, never of the worker that runs it)
    ``episode.step``       (B,) int64, env steps executed in the episode so far
so a stochastic policy draws its noise from (episode.seed, episode.step) and the same evaluation gives
the same episodes whatever the number of workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

OBS_STATE = "obs.state"
OBS_RGB_PREFIX = "obs.rgb."
TASK_INDEX = "task.index"
TASK_EMBEDDING = "task.embedding"
SUITE_INDEX = "suite.index"
TASK_INSTRUCTION = "task.instruction"
ACTION = "action"
ACTION_IS_PAD = "action.is_pad"
EPISODE_SEED = "episode.seed"
EPISODE_STEP = "episode.step"


def rgb_key(camera: str) -> str:
    """The batch key of one camera's images, e.g. ``obs.rgb.corner``."""
    return f"{OBS_RGB_PREFIX}{camera}"


@dataclass(frozen=True)
class Task:
    """One task of a suite, as every part of the project sees it.

    Attributes:
        suite: registry name of the suite, e.g. ``metaworld_mt10``.
        name: the simulator's task name, e.g. ``push-v3``.
        index: stable index of the task within its suite (0-based).
        instruction: plain-English instruction given to the policy.
    """

    suite: str
    name: str
    index: int
    instruction: str

    def to_dict(self) -> dict[str, Any]:
        return {"suite": self.suite, "name": self.name, "index": self.index, "instruction": self.instruction}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> "Task":
        return cls(suite=record["suite"], name=record["name"], index=int(record["index"]),
                   instruction=record["instruction"])


@runtime_checkable
class ChunkPolicy(Protocol):
    """What the evaluation engine calls. Learned and scripted policies share it.

    The policy keeps no rollout state: the observation window and the execution of the
    chunk live in env wrappers.
    """

    n_obs_steps: int  # To: observations the policy looks at
    n_action_steps: int  # Ta: actions of each predicted chunk that are executed
    # A policy may also say `runs_in_worker = True` (cheap, picklable, CPU: the scripted experts): the rollout
    # engine then pickles it into its workers, which run whole episodes next to the envs.

    def predict_action_chunk(self, batch: dict[str, Any]) -> np.ndarray:
        """Predict an action chunk for every env in the batch.

        Args:
            batch: ``obs.state`` (B, To, Ds), optional ``obs.rgb.<camera>`` (B, To, 3, H, W)
                uint8, ``task.index`` (B,), ``task.instruction`` (a list of B strings),
                ``episode.seed`` and ``episode.step`` (B,).

        Returns:
            actions (B, T, Da) float32 with T >= ``n_action_steps``; the first Ta are executed.
        """
        ...
