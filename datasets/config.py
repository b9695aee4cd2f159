"""Typed configuration of the demonstration dataset, registered with hydra's ConfigStore."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class DatasetConfig:
    """Which demonstrations to read and how they are cut into training windows.

    A sample covers observation steps t-To+1..t and action steps t..t+T-1 (To = n_obs_steps,
    T = horizon); see `datasets.sequence_dataset` for the padding at episode edges.
    """

    path: Any = MISSING  # folder of <task>.hdf5 files, one .hdf5 file, or a list of .hdf5 files
    state_keys: list[str] = field(default_factory=lambda: ["state"])  # obs/<key> concatenated into obs.state
    cameras: list[str] = field(default_factory=list)  # cameras read from obs/<camera>_rgb; empty = state only
    n_obs_steps: int = 2  # To: observations per sample (the current one and To-1 before it)
    horizon: int = 16  # T: actions per sample, from the current step on
    n_action_steps: int = 8  # Ta: actions executed per chunk; a window may run Ta-1 steps past the end
    task_balanced: bool = False  # sample every task equally often instead of every window
    cache_images: bool = False  # hold all images in RAM (uint8); only for datasets that fit
    task_names: list[str] | None = None  # fixed task order (index = position); None: sorted task names
    only_tasks: list[str] | None = None  # read only these tasks' files (indices still from task_names)

    def __post_init__(self) -> None:
        check_window(self.n_obs_steps, self.horizon, self.n_action_steps)


def check_window(n_obs_steps: int, horizon: int, n_action_steps: int) -> None:
    """Raise ValueError unless 1 <= To and 1 <= Ta <= T (also for configs hydra merged from YAML)."""
    if n_obs_steps < 1:
        raise ValueError(f"n_obs_steps must be >= 1, got {n_obs_steps}")
    if not 1 <= n_action_steps <= horizon:
        raise ValueError(f"need 1 <= n_action_steps <= horizon, got n_action_steps={n_action_steps}, "
                         f"horizon={horizon}")


ConfigStore.instance().store(group="dataset", name="dataset_schema", node=DatasetConfig)
