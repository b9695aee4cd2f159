"""Read a LeRobotDataset v3 folder with pyarrow and PyAV (no `lerobot` package): `dataset.format=lerobot`.

    meta/info.json                     codebase_version "v3.x", fps, features {name: {dtype, shape, names}},
                                       data_path and video_path templates ({chunk_index}, {file_index}, {video_key})
    meta/tasks.parquet                 one row per task: its text (the index, column "task") and task_index
    meta/episodes/chunk-*/file-*.parquet   one row per episode: episode_index, length, data/chunk_index,
                                       data/file_index, and per video feature videos/<key>/chunk_index,
                                       file_index, from_timestamp
    data/chunk-*/file-*.parquet        one row per frame: index, episode_index, frame_index, timestamp
                                       (within the episode), task_index and the features; "image" features as
                                       {bytes, path} structs (PNG or JPEG)
    videos/<key>/chunk-*/file-*.mp4    "video" features; several episodes per file, a frame of step t at
                                       time from_timestamp + timestamp[t] (within `timestamp_tolerance_s`);
                                       AV1 (LeRobot's default) or any codec the installed FFmpeg decodes

`LeRobotSource` is the `datasets.source.EpisodeSource` of such a folder: one `TaskEpisodes` per task (the
task's text is its instruction; with `dataset.task_instructions` it is named after the suite task it is
the instruction of), state and actions in RAM, camera frames decoded on demand and turned upright
(`dataset.lerobot.image_orientation`). Every mismatch is a `DatasetError` naming the file and the key.
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from datasets.config import DatasetConfig, ImageOrientation
from datasets.lerobot_files import open_video, read_data_file, read_episodes, read_info, read_tasks
from datasets.reader import OPENCV, DatasetError, Episode, TaskEpisodes
from datasets.source import SOURCES

log = logging.getLogger(__name__)

INFO, TASKS, EPISODES = Path("meta/info.json"), Path("meta/tasks.parquet"), Path("meta/episodes")
FRAME_COLUMNS = ("index", "episode_index", "frame_index", "timestamp", "task_index")
CAMERA_PREFIX = "observation.images."
IMAGE_DTYPES = ("video", "image")
TURN = {ImageOrientation.upright: lambda f: f, ImageOrientation.rotate180: lambda f: f[:, ::-1, ::-1],
        ImageOrientation.flip_vertical: lambda f: f[:, ::-1], ImageOrientation.flip_horizontal: lambda f: f[:, :, ::-1]}


def is_lerobot_folder(path: str | Path) -> bool:
    return (Path(path) / INFO).is_file()


@dataclass
class _EpisodeFrames:
    """Where one episode's frames are: its rows in a data file, and per video camera the file and start time."""

    data_file: Path
    first_row: int
    timestamps: np.ndarray  # (L,) float64, within the episode
    videos: dict[str, tuple[Path, float]] = field(default_factory=dict)  # camera -> (mp4, from_timestamp)


@SOURCES.register("lerobot")
class LeRobotSource:
    """A LeRobotDataset v3 folder as an `EpisodeSource`; see the module docstring."""

    collected = False  # read as it is; collect.py writes HDF5

    def __init__(self, config: DatasetConfig, all_state: bool = False, all_cameras: bool = False):
        """`config.state_keys` and `config.cameras` choose what is read; `all_state` and `all_cameras` read
        every 1-D observation feature (observation.state alone where there is one) and every camera instead
        (what `python -m datasets.inspect` shows)."""
        self.config, self.lerobot = config, config.lerobot
        self.root = Path(config.path)
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: LeRobot dataset folder does not exist")
        self.info = read_info(self.root / INFO)
        self.features: dict[str, dict[str, Any]] = self.info["features"]
        self.state_keys = self._default_state_keys() if all_state else list(config.state_keys)
        cameras = self._default_cameras() if all_cameras else list(config.cameras)
        self.camera_features = {c: self.lerobot.camera_features.get(c, CAMERA_PREFIX + c) for c in cameras}
        self._check_features()
        self.tasks = read_tasks(self.root / TASKS)
        self.episode_rows = read_episodes(self.root / EPISODES)
        self.files = [self.root / INFO, self.root / TASKS, *sorted((self.root / EPISODES).glob("*/*.parquet")),
                      *sorted(self._episodes_by_data_file())]  # what the arrays are read from (statistics cache)
        self.identity = {"format": "lerobot", "action": self.lerobot.action_feature}
        self._where: dict[str, _EpisodeFrames] = {}
        self.task_files = self._read_frames()
        self._check_videos()
        self._pid: int | None = None
        self._open: dict[Path, Any] = {}  # this process's video containers and image columns

    # ------------------------------------------------------------------ features and metadata

    def _default_state_keys(self) -> list[str]:
        if "observation.state" in self.features:
            return ["observation.state"]
        return sorted(k for k, f in self.features.items() if k.startswith("observation.")
                      and f["dtype"] not in IMAGE_DTYPES and len(f["shape"]) == 1)

    def _default_cameras(self) -> list[str]:
        """Camera names of every image feature: the configured name of a mapped feature, else the feature's name
        without "observation.images."."""
        named = {feature: camera for camera, feature in self.lerobot.camera_features.items()}
        return sorted(named.get(k, k.removeprefix(CAMERA_PREFIX)) for k, f in self.features.items()
                      if f["dtype"] in IMAGE_DTYPES)

    def _feature(self, key: str, what: str) -> dict[str, Any]:
        if key not in self.features:
            raise DatasetError(f"{self.root / INFO}: feature '{key}' ({what}) is missing; features: "
                               f"{sorted(self.features)}")
        return self.features[key]

    def _check_features(self) -> None:
        for key, what in [*((k, "dataset.state_keys") for k in self.state_keys),
                          (self.lerobot.action_feature, "dataset.lerobot.action_feature")]:
            feature = self._feature(key, what)
            if feature["dtype"] in IMAGE_DTYPES or len(feature["shape"]) != 1:
                raise DatasetError(f"{self.root / INFO}: feature '{key}' ({what}) must be a 1-D vector, got dtype "
                                   f"{feature['dtype']} shape {feature['shape']}")
        for camera, key in self.camera_features.items():
            feature = self._feature(key, f"camera '{camera}'")
            if feature["dtype"] not in IMAGE_DTYPES or len(feature["shape"]) != 3:
                raise DatasetError(f"{self.root / INFO}: feature '{key}' (camera '{camera}') must be an image or "
                                   f"video of shape (H, W, 3), got dtype {feature['dtype']} shape {feature['shape']}")
            self.image_shape(camera)

    def image_shape(self, camera: str) -> tuple[int, int, int]:
        """(H, W, 3) of a camera's frames, from info.json (shapes listed channels first are reordered)."""
        key = self.camera_features[camera]
        feature = self.features[key]
        shape, names = list(feature["shape"]), list(feature.get("names") or [])
        if names and str(names[0]).startswith("channel"):
            shape = shape[1:] + shape[:1]
        if shape[2] != 3:
            raise DatasetError(f"{self.root / INFO}: feature '{key}' has shape {feature['shape']}; expected 3 colour "
                               "channels")
        return int(shape[0]), int(shape[1]), 3

    # ------------------------------------------------------------------ frames in RAM

    def _read_frames(self) -> list[TaskEpisodes]:
        """Every episode's state and actions, grouped by task (one TaskEpisodes per task, by task_index)."""
        by_task: dict[int, list[Episode]] = {}
        vectors = list(dict.fromkeys([*self.state_keys, self.lerobot.action_feature]))
        for data_file, rows in self._episodes_by_data_file().items():
            table = read_data_file(data_file, [*FRAME_COLUMNS, *vectors])
            for key in vectors:
                width = int(self.features[key]["shape"][0])
                if table[key].ndim != 2 or table[key].shape[1] != width:
                    raise DatasetError(f"{data_file}: key '{key}' has shape {table[key].shape[1:]} per frame, but "
                                       f"meta/info.json says ({width},)")
            episodes, starts, counts = np.unique(table["episode_index"], return_index=True, return_counts=True)
            spans = {int(e): (int(a), int(n)) for e, a, n in zip(episodes, starts, counts)}
            for row in rows:
                task, episode = self._episode(data_file, table, row, spans.get(int(row["episode_index"]), (0, 0)))
                by_task.setdefault(task, []).append(episode)
        names = self._task_names()
        return [self._task_file(task, names.get(task, ""), episodes) for task, episodes in sorted(by_task.items())]

    def _episodes_by_data_file(self) -> dict[Path, list[dict[str, Any]]]:
        template = self.info["data_path"]
        groups: dict[Path, list[dict[str, Any]]] = {}
        for row in self.episode_rows:
            path = self.root / template.format(chunk_index=row["data/chunk_index"], file_index=row["data/file_index"])
            if not path.is_file():
                raise DatasetError(f"{path}: data file of episode {row['episode_index']} does not exist")
            groups.setdefault(path, []).append(row)
        return groups

    def _episode(self, data_file: Path, table: dict[str, np.ndarray], row: dict[str, Any],
                 span: tuple[int, int]) -> tuple[int, Episode]:
        """One episode's arrays from its rows of a data file: `span` = (first row, rows with its index)."""
        index, length = int(row["episode_index"]), int(row["length"])
        rows = slice(span[0], span[0] + span[1])
        contiguous = (table["episode_index"][rows] == index).all()
        if span[1] != length or not contiguous or not np.array_equal(table["frame_index"][rows], np.arange(length)):
            raise DatasetError(f"{data_file}: key 'frame_index' of episode {index} is not 0..{length - 1} in "
                               f"consecutive rows ({span[1]} rows found; meta/episodes says length {length})")
        tasks = np.unique(table["task_index"][rows])
        if len(tasks) != 1:
            raise DatasetError(f"{data_file}: key 'task_index' of episode {index} holds tasks {tasks.tolist()}; one "
                               "task per episode is read")
        state = np.concatenate([table[key][rows] for key in self.state_keys], axis=1) if self.state_keys else \
            np.zeros((length, 0), np.float32)
        action = table[self.lerobot.action_feature][rows]
        for key, array in (("+".join(self.state_keys), state), (self.lerobot.action_feature, action)):
            if not np.isfinite(array).all():
                raise DatasetError(f"{data_file}: key '{key}' of episode {index} holds NaN or infinite values")
        demo = f"episode_{index:06d}"
        self._where[demo] = _EpisodeFrames(data_file, span[0], table["timestamp"][rows].astype(np.float64),
                                           self._video_places(row))
        return int(tasks[0]), Episode(demo=demo, state=state.astype(np.float32), action=action.astype(np.float32))

    def _video_places(self, row: dict[str, Any]) -> dict[str, tuple[Path, float]]:
        places = {}
        for camera, key in self.camera_features.items():
            if self.features[key]["dtype"] != "video":
                continue
            columns = [f"videos/{key}/{name}" for name in ("chunk_index", "file_index", "from_timestamp")]
            missing = [c for c in columns if c not in row]
            if missing:
                raise DatasetError(f"{self.root / EPISODES}: column '{missing[0]}' is missing (episode "
                                   f"{row['episode_index']})")
            path = self.root / self.info["video_path"].format(video_key=key, chunk_index=row[columns[0]],
                                                              file_index=row[columns[1]])
            places[camera] = (path, float(row[columns[2]]))
        return places

    def _task_names(self) -> dict[int, str]:
        """task_index -> task name: its text, or the suite task whose instruction it is (dataset.task_instructions)."""
        names, cfg = {}, self.config
        by_instruction: dict[str, list[str]] = {}
        for name, instruction in zip(cfg.task_names or [], cfg.task_instructions or []):
            by_instruction.setdefault(instruction, []).append(name)
        for index, text in self.tasks.items():
            if not cfg.task_instructions:
                names[index] = text
            elif len(by_instruction.get(text, [])) != 1:
                found = "is the instruction of no" if text not in by_instruction else "is the instruction of several"
                raise DatasetError(f"{self.root / TASKS}: task {index} {text!r} {found} task of the suite "
                                   f"({by_instruction.get(text) or sorted(by_instruction)})")
            else:
                names[index] = by_instruction[text][0]
        return names

    def _task_file(self, task: int, name: str, episodes: list[Episode]) -> TaskEpisodes:
        if task not in self.tasks:
            raise DatasetError(f"{self.root / TASKS}: task_index {task} (used in the data files) is not listed")
        specs = {key: (tuple(self.features[key]["shape"]), self.features[key]["dtype"]) for key in self.features}
        return TaskEpisodes(path=self.root, task=name, instruction=self.tasks[task], suite=None,
                            image_convention=OPENCV, state_keys=list(self.state_keys),
                            cameras=list(self.camera_features),
                            image_shapes={c: self.image_shape(c) for c in self.camera_features}, obs_specs=specs,
                            action_dtype=self.features[self.lerobot.action_feature]["dtype"],
                            episodes=sorted(episodes, key=lambda e: e.demo))

    def _check_videos(self) -> None:
        """Every video file a camera needs exists, and its first frame decodes to the feature's shape."""
        checked = set()
        for where in self._where.values():
            for camera, (path, start) in where.videos.items():
                if path not in checked:
                    checked.add(path)
                    if not path.is_file():
                        raise DatasetError(f"{path}: video of feature '{self.camera_features[camera]}' does not exist")
                    self._decode(path, camera, np.array([start + where.timestamps[0]]), keep_open=False)

    def video_codec(self, key: str) -> str:
        """The codec of a video feature's first file (e.g. "av1", "h264")."""
        import av

        camera = next(c for c, k in self.camera_features.items() if k == key)
        path = next(where.videos[camera][0] for where in self._where.values() if camera in where.videos)
        with av.open(str(path)) as container:
            return container.streams.video[0].codec_context.codec.canonical_name

    # ------------------------------------------------------------------ camera frames

    def frames(self, file: int, demo: str, camera: str, first: int, end: int) -> np.ndarray:
        where = self._where[demo]
        if camera in where.videos:
            path, start = where.videos[camera]
            frames = self._decode(path, camera, start + where.timestamps[first:end])
        else:
            frames = self._images(where, camera, first, end)
        return np.ascontiguousarray(TURN[self.lerobot.image_orientation](frames))

    def _decode(self, path: Path, camera: str, times: np.ndarray, keep_open: bool = True) -> np.ndarray:
        """(N, H, W, 3) uint8 frames at ascending `times` (s) of a video file, as stored."""
        import av

        key, tolerance = self.camera_features[camera], self.lerobot.timestamp_tolerance_s
        try:
            container = self._handle(path, lambda: open_video(path)) if keep_open else open_video(path)
            stream = container.streams.video[0]
            container.seek(max(0, int((times[0] - tolerance) / stream.time_base)), stream=stream, backward=True)
            found = []
            for frame in container.decode(stream):
                if frame.time is None or frame.time < times[len(found)] - tolerance:
                    continue
                if frame.time > times[len(found)] + tolerance:
                    break
                found.append(frame.to_ndarray(format="rgb24"))
                if len(found) == len(times):
                    break
            if not keep_open:
                container.close()
        except (av.FFmpegError, IndexError, OSError) as error:
            raise DatasetError(f"{path}: cannot decode the video of feature '{key}' ({error})") from error
        if len(found) < len(times):
            raise DatasetError(f"{path}: feature '{key}' has no frame at t={times[len(found)]:.4f} s (within "
                               f"{tolerance:g} s; frame time = from_timestamp + timestamp)")
        return self._checked(np.stack(found), path, camera)

    def _images(self, where: _EpisodeFrames, camera: str, first: int, end: int) -> np.ndarray:
        """Frames of an "image" feature: PNG or JPEG bytes in the data file's column."""
        from PIL import Image

        key = self.camera_features[camera]
        column = self._handle((where.data_file, key), lambda: read_data_file(where.data_file, [key], raw=True)[key])
        images = []
        for item in column[where.first_row + first: where.first_row + end]:
            data = item.get("bytes") if isinstance(item, dict) else None
            if not data and isinstance(item, dict) and item.get("path"):
                data = (self.root / item["path"]).read_bytes()
            try:
                images.append(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
            except Exception as error:  # PIL raises many kinds for bad bytes
                raise DatasetError(f"{where.data_file}: key '{key}' holds an image that cannot be decoded "
                                   f"({error})") from error
        return self._checked(np.stack(images), where.data_file, camera)

    def _checked(self, frames: np.ndarray, path: Path, camera: str) -> np.ndarray:
        if frames.shape[1:] != self.image_shape(camera):
            raise DatasetError(f"{path}: frames of feature '{self.camera_features[camera]}' are {frames.shape[1:]}, "
                               f"but meta/info.json says {self.image_shape(camera)}")
        return frames

    def _handle(self, key: Any, opener) -> Any:
        """This process's open file for `key`; handles inherited through fork are not used."""
        if self._pid != os.getpid():
            self._pid, self._open = os.getpid(), {}
        if key not in self._open:
            self._open[key] = opener()
        return self._open[key]

    def close(self) -> None:
        if self._pid == os.getpid():
            for handle in self._open.values():
                if hasattr(handle, "close"):
                    handle.close()
        self._pid, self._open = None, {}

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__, _pid=None, _open={})
