"""Typed configuration of the demonstration dataset, registered with hydra's ConfigStore."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


class DatasetFormat(StrEnum):
    hdf5 = "hdf5"  # task files in the robomimic / LIBERO layout (ours, official LIBERO)
    lerobot = "lerobot"  # a LeRobotDataset v3 folder (datasets/lerobot.py)


class ImageOrientation(StrEnum):
    """How stored frames relate to the upright image; reading undoes it (each is its own inverse)."""

    upright = "upright"
    rotate180 = "rotate180"  # turned by 180 degrees
    flip_vertical = "flip_vertical"  # upside down (rows reversed; robosuite's OpenGL convention)
    flip_horizontal = "flip_horizontal"  # mirrored left-right


@dataclass
class LeRobotConfig:
    """How a LeRobotDataset v3 folder's features map onto this suite's batch keys (dataset.format=lerobot).

    obs.state is `dataset.state_keys` (LeRobot feature names, concatenated in order); camera c of
    `dataset.cameras` is the feature `camera_features[c]`, else `observation.images.<c>`.
    """

    action_feature: str = "action"  # the feature that is `action`
    camera_features: dict[str, str] = field(default_factory=dict)  # camera name -> feature, where it differs
    image_orientation: ImageOrientation = ImageOrientation.upright  # how the stored frames are turned
    timestamp_tolerance_s: float = 1e-4  # a video frame belongs to a step when its time is this close


@dataclass
class DatasetConfig:
    """Which demonstrations to read and how they are cut into training windows.

    A sample covers observation steps t-To+1..t and action steps t..t+T-1 (To = n_obs_steps,
    T = horizon); see `datasets.sequence_dataset` for the padding at episode edges.
    """

    path: Any = MISSING  # folder of <task>.hdf5 files, one .hdf5 file, a list of them, or a LeRobot v3 folder
    format: DatasetFormat = DatasetFormat.hdf5  # hdf5 or lerobot
    state_keys: list[str] = field(default_factory=lambda: ["state"])  # obs/<key> concatenated into obs.state
    cameras: list[str] = field(default_factory=list)  # cameras read from obs/<camera>_rgb; empty = state only
    n_obs_steps: int = 2  # To: observations per sample (the current one and To-1 before it)
    horizon: int = 16  # T: actions per sample, from the current step on
    n_action_steps: int = 8  # Ta: actions executed per chunk; a window may run Ta-1 steps past the end
    task_balanced: bool = False  # sample every task equally often instead of every window
    cache_images: bool = False  # hold all images in RAM (uint8); only for datasets that fit
    task_names: list[str] | None = None  # fixed task order (index = position); None: sorted task names
    task_instructions: list[str] | None = None  # instruction of each of task_names: datasets that name tasks by
    # their instruction (LeRobot) are matched to task_names through it
    only_tasks: list[str] | None = None  # windows of these tasks' episodes only (indices still from task_names)
    lerobot: LeRobotConfig = field(default_factory=LeRobotConfig)  # used with format=lerobot

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
