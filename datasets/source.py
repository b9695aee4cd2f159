"""Where a dataset's episodes come from: one `EpisodeSource` per on-disk format, chosen by `dataset.format`.

    source = open_source(config)               # DatasetConfig -> the registered source of config.format
    source.task_files                          # one TaskEpisodes per task: state and actions in RAM
    source.frames(file, demo, camera, 0, 10)   # (10, H, W, 3) uint8 upright frames of one episode

A source reads everything low-dimensional at once (`task_files`, as `datasets.reader` does for HDF5) and
camera frames on demand; `MultitaskSequenceDataset` cuts the same windows from any of them. Formats
register here by name (`@SOURCES.register("lerobot")` in datasets/lerobot.py); the dataset never names one.
A source is pickled into DataLoader workers: file handles are opened lazily, per process, and dropped
when pickled.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import h5py
import numpy as np

from common.registry import Registry
from datasets.config import DatasetConfig
from datasets.reader import TaskEpisodes, image_dataset_path, read_task_file, resolve_task_files, upright

SOURCES: Registry[type] = Registry("dataset format", discover="datasets")


class EpisodeSource(Protocol):
    """What `MultitaskSequenceDataset` reads episodes through.

    Attributes:
        files: the files whose names, sizes and modification times identify the data (statistics cache).
        root: the folder beside which derived files (statistics) are cached.
        task_files: one `TaskEpisodes` per task; `task_files[f].episodes[e].demo` names an episode to `frames`.
        identity: what else decides the arrays (e.g. which features are read), for the statistics cache.
        collected: (a class attribute) whether `collect.py` writes this format, so train.py may collect
            missing tasks into `dataset.path`.
    """

    collected: bool
    files: list[Path]
    root: Path
    task_files: list[TaskEpisodes]
    identity: dict[str, Any]

    def frames(self, file: int, demo: str, camera: str, first: int, end: int) -> np.ndarray:
        """Steps first..end-1 of one episode's camera, (end - first, H, W, 3) uint8, upright."""
        ...

    def close(self) -> None:
        """Close this process's file handles (they reopen on the next read)."""
        ...


def open_source(config: DatasetConfig) -> EpisodeSource:
    """The source of `config.format` over `config.path`."""
    return SOURCES.get(str(config.format))(config)


@SOURCES.register("hdf5")
class HDF5Source:
    """Task files in the robomimic / LIBERO HDF5 layout (`datasets.reader`), images read from HDF5 per call."""

    collected = True

    def __init__(self, config: DatasetConfig):
        source = config.path if isinstance(config.path, (str, Path)) else list(config.path)
        self.files = resolve_task_files(source)
        self.root = Path(source) if isinstance(source, (str, Path)) and Path(source).is_dir() else self.files[0].parent
        self.task_files = [read_task_file(path, list(config.state_keys), list(config.cameras)) for path in self.files]
        self.identity: dict[str, Any] = {}
        self._pid: int | None = None
        self._handles: dict[int, h5py.File] = {}
        self._datasets: dict[tuple[int, str, str], h5py.Dataset] = {}

    def frames(self, file: int, demo: str, camera: str, first: int, end: int) -> np.ndarray:
        frames = self._dataset(file, demo, camera)[first:end]  # h5py reads one plain slice fastest
        return upright(frames, self.task_files[file].image_convention)

    def _dataset(self, file: int, demo: str, camera: str) -> h5py.Dataset:
        """This process's handle on one episode's images; handles inherited through fork are not used."""
        if self._pid != os.getpid():
            self._pid, self._handles, self._datasets = os.getpid(), {}, {}
        dataset = self._datasets.get((file, demo, camera))
        if dataset is None:
            if file not in self._handles:
                self._handles[file] = h5py.File(self.files[file], "r")
            dataset = self._datasets[(file, demo, camera)] = self._handles[file][image_dataset_path(demo, camera)]
        return dataset

    def close(self) -> None:
        if self._pid == os.getpid():
            for handle in self._handles.values():
                handle.close()
        self._pid, self._handles, self._datasets = None, {}, {}

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__, _pid=None, _handles={}, _datasets={})
