"""Training windows over many task files: observation history, action chunk, task identity.

A sample at step t of an episode of length L holds

    obs.state          (To, Ds) float32   steps t-To+1 .. t   (before step 0: step 0 repeated)
    obs.rgb.<camera>   (To, 3, H, W) uint8, same steps, upright
    action             (T, Da) float32    steps t .. t+T-1    (after step L-1: step L-1 repeated)
    action.is_pad      (T,) bool          True where the step is past L-1
    task.index         () int64
    task.instruction   str

Valid t follow Diffusion Policy's SequenceSampler: pad_before = To-1, pad_after = Ta-1
(Ta = n_action_steps). The window's steps t-To+1 .. t+T-1 may start at most To-1 steps before
the episode (so t >= 0: the first sample repeats step 0 To-1 times) and end at most Ta-1 steps
after it (so t <= L-T+Ta-1: every chunk holds at least T-Ta+1 real actions, padding fills
at most Ta-1). So the last T-Ta steps of an episode are never the current step (they appear
as actions). Episodes shorter than T-Ta+1 steps give no window; that is logged as a warning,
never silent.

The episodes come from the source of `dataset.format` (`datasets.source`): task files in the HDF5 layout,
or a LeRobotDataset v3 folder (`datasets.lerobot`). State and actions live in RAM (all steps of all
episodes in two arrays); images are read from the source per sample (HDF5 datasets, or video frames),
through handles opened lazily in each process (keyed on the process id, so DataLoader workers open their
own after fork and pickling carries no handles), or from an optional in-RAM uint8 cache (`cache_images`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from common.schema import ACTION, ACTION_IS_PAD, OBS_STATE, TASK_INDEX, TASK_INSTRUCTION, rgb_key
from datasets.config import DatasetConfig, check_window
from datasets.reader import DatasetError, TaskEpisodes, check_compatible
from datasets.source import open_source

logger = logging.getLogger(__name__)


class MultitaskSequenceDataset(Dataset):
    """Windows of `n_obs_steps` observations and `horizon` actions over one file per task.

    Attributes:
        config: the `DatasetConfig` it was built from.
        source: where the episodes come from (`datasets.source.EpisodeSource` of `config.format`).
        files: the files the data is read from (task files, or a LeRobot folder's parquet and meta files).
        root: folder beside which derived files (statistics) are cached.
        tasks: (index, name, instruction) of each task present, by index.
        tasks_without_demonstrations: names in `config.task_names` with no episode here (a task its scripted
            expert never solved): a policy trained on this keeps them in its task table, untrained.
        task_of_sample: (N,) int64, the task index of each sample (for balanced sampling).
        image_shapes: camera -> (3, H, W) of `obs.rgb.<camera>` frames.
    """

    def __init__(self, config: DatasetConfig) -> None:
        check_window(config.n_obs_steps, config.horizon, config.n_action_steps)
        self.config = config
        self.n_obs_steps, self.horizon, self.n_action_steps = config.n_obs_steps, config.horizon, config.n_action_steps
        self.cameras = list(config.cameras)
        self.source = open_source(config)
        self.files, self.root = self.source.files, self.source.root
        task_files = self.source.task_files
        self._source_file = list(range(len(task_files)))  # each kept task's position in source.task_files
        if config.only_tasks is not None:
            self._source_file = kept_task_files(task_files, config.only_tasks)
            task_files = [task_files[f] for f in self._source_file]
        check_compatible(task_files)
        indices = task_indices([tf.task for tf in task_files], config.task_names, [tf.path for tf in task_files])
        self.tasks = sorted((indices[i], tf.task, tf.instruction) for i, tf in enumerate(task_files))
        present = {tf.task for tf in task_files}
        wanted = config.task_names if config.only_tasks is None and config.task_names is not None else []
        self.tasks_without_demonstrations = [name for name in wanted if name not in present]
        if self.tasks_without_demonstrations:
            logger.warning("%s holds no demonstrations of tasks %s: a policy trained on it has never seen them "
                           "(to leave them out on purpose, name the others in train_tasks=[...])", self.root,
                           self.tasks_without_demonstrations)
        self.image_shapes = {c: (3, *task_files[0].image_shapes[c][:2]) for c in self.cameras}
        self._index_episodes(task_files, indices)
        self._obs_offsets = np.arange(1 - self.n_obs_steps, 1)
        self._action_offsets = np.arange(self.horizon)
        self._image_cache = self._load_image_cache() if config.cache_images and self.cameras else None
        logger.info("dataset: %d tasks, %d episodes, %d steps, %d windows from %s", len(self.tasks),
                    len(self._length), len(self._state), len(self), self.root)

    def _index_episodes(self, task_files: list[TaskEpisodes], indices: list[int]) -> None:
        """Concatenate all episodes' arrays and precompute (episode, t) of every sample."""
        episodes = [(f, e) for f, tf in enumerate(task_files) for e in tf.episodes]
        self._episode_file = np.array([self._source_file[f] for f, _ in episodes], dtype=np.int64)  # for frames
        self._episode_demo = [e.demo for _, e in episodes]
        self._episode_task = np.array([indices[f] for f, _ in episodes], dtype=np.int64)
        self._length = np.array([e.length for _, e in episodes], dtype=np.int64)
        self._begin = np.cumsum(self._length) - self._length
        self._state = np.concatenate([e.state for _, e in episodes])
        self._action = np.concatenate([e.action for _, e in episodes])
        self._sample_episode, self._sample_t = window_starts(self._length, self.horizon, self.n_action_steps)
        self.task_of_sample = self._episode_task[self._sample_episode]
        self._instructions = [task_files[f].instruction for f, _ in episodes]
        shortest = self.horizon - self.n_action_steps + 1
        empty = [f"{task_files[f].path.name}:{e.demo}" for f, e in episodes if e.length < shortest]
        if empty:
            logger.warning("%d episodes are shorter than horizon - n_action_steps + 1 = %d steps and give no "
                           "window: %s", len(empty), shortest, ", ".join(empty))
        if len(self._sample_t) == 0:
            raise DatasetError(f"{self.root}: no episode is long enough for one window "
                               f"(horizon={self.horizon}, n_action_steps={self.n_action_steps})")

    def __len__(self) -> int:
        return len(self._sample_t)

    def __getitem__(self, index: int) -> dict[str, Any]:
        episode, t = int(self._sample_episode[index]), int(self._sample_t[index])
        begin, last = int(self._begin[episode]), int(self._length[episode]) - 1
        obs_steps = np.maximum(self._obs_offsets + t, 0)  # t <= last, so only the start needs padding
        action_steps = self._action_offsets + t
        sample = {
            OBS_STATE: torch.from_numpy(self._state[obs_steps + begin]),
            ACTION: torch.from_numpy(self._action[np.minimum(action_steps, last) + begin]),
            ACTION_IS_PAD: torch.from_numpy(action_steps > last),
            TASK_INDEX: torch.tensor(self._episode_task[episode]),
            TASK_INSTRUCTION: self._instructions[episode],
        }
        for camera in self.cameras:
            sample[rgb_key(camera)] = torch.from_numpy(self._frames(episode, camera, obs_steps))
        return sample

    @property
    def state_dim(self) -> int:
        return self._state.shape[1]

    @property
    def action_dim(self) -> int:
        return self._action.shape[1]

    @property
    def num_episodes(self) -> int:
        return len(self._length)

    def step_arrays(self) -> dict[str, np.ndarray]:
        """All steps of all episodes: ``obs.state`` (N, Ds) and ``action`` (N, Da), read-only views."""
        views = {OBS_STATE: self._state.view(), ACTION: self._action.view()}
        for view in views.values():
            view.flags.writeable = False
        return views

    def _frames(self, episode: int, camera: str, steps: np.ndarray) -> np.ndarray:
        """(To, 3, H, W) uint8 upright frames of `camera` at in-episode `steps` (ascending)."""
        if self._image_cache is not None:
            return self._image_cache[camera][steps + self._begin[episode]]
        first, end = int(steps[0]), int(steps[-1]) + 1
        frames = self.source.frames(int(self._episode_file[episode]), self._episode_demo[episode], camera, first, end)
        if end - first != len(steps):  # step 0 repeated at the episode start
            frames = frames[steps - first]
        return np.ascontiguousarray(frames.transpose(0, 3, 1, 2))

    def _load_image_cache(self) -> dict[str, np.ndarray]:
        """Every frame of every camera, upright, (N, 3, H, W) uint8 in RAM; refuses what does not fit."""
        n_bytes = len(self._state) * sum(int(np.prod(shape)) for shape in self.image_shapes.values())
        available = _available_memory()
        if available is not None and n_bytes > 0.8 * available:
            raise DatasetError(f"{self.root}: caching images needs {n_bytes / 2**30:.2f} GiB but only "
                               f"{available / 2**30:.2f} GiB of RAM is available; set cache_images=false")
        logger.info("caching images of cameras %s in RAM: %d frames each, %.1f MiB", self.cameras,
                    len(self._state), n_bytes / 2**20)
        cache = {c: np.empty((len(self._state), *self.image_shapes[c]), dtype=np.uint8) for c in self.cameras}
        for episode in range(self.num_episodes):
            begin, end = int(self._begin[episode]), int(self._begin[episode] + self._length[episode])
            for camera in self.cameras:
                frames = self.source.frames(int(self._episode_file[episode]), self._episode_demo[episode], camera, 0,
                                            int(self._length[episode]))
                cache[camera][begin:end] = frames.transpose(0, 3, 1, 2)
        self.close()
        return cache

    def close(self) -> None:
        """Close this process's file handles (they reopen on the next image read)."""
        self.source.close()


def kept_task_files(task_files: list[TaskEpisodes], names: list[str]) -> list[int]:
    """Positions of the tasks named in `task_files`; a name without demonstrations is an error naming the tasks
    there are."""
    present = {tf.task for tf in task_files}
    missing = [name for name in names if name not in present]
    if missing:
        raise DatasetError(f"no demonstrations of tasks {missing}; the dataset holds {sorted(present)}")
    return [f for f, tf in enumerate(task_files) if tf.task in names]


def task_indices(names: list[str], task_names: list[str] | None, files: list[Path]) -> list[int]:
    """Index of each file's task: its position in `task_names`, else in the sorted task names."""
    seen: dict[str, Path] = {}
    for name, path in zip(names, files):
        if name in seen:
            raise DatasetError(f"{path}: task '{name}' (attribute 'task' of 'data') is also in {seen[name]}; "
                               "keep one file per task")
        seen[name] = path
    order = list(task_names) if task_names is not None else sorted(names)
    unknown = [f"{path} (task '{name}')" for name, path in zip(names, files) if name not in order]
    if unknown:
        raise DatasetError(f"tasks not in task_names {order}: {', '.join(unknown)}")
    return [order.index(name) for name in names]


def window_starts(lengths: np.ndarray, horizon: int, n_action_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(episode, t) of every valid window: t in [0, L - T + Ta - 1] for each episode length L."""
    counts = np.maximum(lengths - horizon + n_action_steps, 0)
    episode = np.repeat(np.arange(len(lengths)), counts)
    t = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return episode, t


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as meminfo:
            fields = dict(line.split(":", 1) for line in meminfo)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None
