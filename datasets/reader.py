"""Read task files in the robomimic / LIBERO HDF5 layout: our own files and official LIBERO demos.

One file holds one task (see `datasets.layout`). Low-dimensional data is loaded into RAM
here; image datasets are only checked (shape, dtype, length) and read later, on demand.
Every problem raises `DatasetError` naming the file and the HDF5 key; nothing is skipped.

Image orientation. robosuite renders in OpenGL's convention (row 0 is the BOTTOM of the
image) and converts with ``img[::convention]`` where ``IMAGE_CONVENTION_MAPPING = {"opengl": 1,
"opencv": -1}`` (robosuite 1.4 ``environments/robot_env.py``, ``_create_camera_sensors``;
``utils/mjcf_utils.py``): the "opencv" image is the "opengl" one with its ROWS reversed, a
vertical flip, not a 180-degree turn. The official LIBERO demo files were written with
``macros_image_convention = "opengl"`` (LIBERO issue #11: "flipped upside down"). The 180-degree
turn ``img[::-1, ::-1]`` used by OpenVLA / openpi / LeRobot's LIBERO code mirrors the scene
left-right (openvla issue #295: camera poses only match after a vertical flip; lerobot issue
#3830 and PR #3882: the turned images show a mirrored Franka). So "opengl" images are made
upright here by reversing their rows, exactly robosuite's own opengl -> opencv conversion; a
LIBERO env built with ``macros.IMAGE_CONVENTION = "opencv"`` then sees the same images.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import h5py
import numpy as np

from datasets import layout
from datasets.layout import image_key

logger = logging.getLogger(__name__)

OPENGL = "opengl"
OPENCV = "opencv"


class DatasetError(ValueError):
    """A demonstration file or folder that cannot be used as it is; the message names file and key."""


@dataclass
class Episode:
    """One demonstration, low-dimensional data in RAM.

    Attributes:
        demo: group name under ``data/``, e.g. ``demo_3``.
        state: (L, Ds) float32, the chosen obs keys concatenated in order.
        action: (L, Da) float32.
    """

    demo: str
    state: np.ndarray
    action: np.ndarray

    @property
    def length(self) -> int:
        return len(self.action)


@dataclass
class TaskEpisodes:
    """Everything read from one task file.

    Attributes:
        path: the file.
        task: attribute ``task`` of ``data``, else the file stem without ``_demo``.
        instruction: our ``instruction`` attribute, else LIBERO's ``problem_info``.
        suite: attribute ``suite`` of ``data`` (None in LIBERO files).
        image_convention: "opengl" (stored upside down, flipped when read) or "opencv" (upright).
        state_keys: obs keys forming ``Episode.state``, in order.
        cameras: cameras whose images ``obs/<camera>_rgb`` were checked (not loaded).
        image_shapes: camera -> (H, W, 3).
        obs_specs: every obs key of the first demo -> (per-step shape, dtype name).
        action_dtype: dtype name of ``actions`` on disk (loaded as float32).
        episodes: demos ordered by number.
    """

    path: Path
    task: str
    instruction: str
    suite: str | None
    image_convention: str
    state_keys: list[str]
    cameras: list[str]
    image_shapes: dict[str, tuple[int, ...]]
    obs_specs: dict[str, tuple[tuple[int, ...], str]]
    action_dtype: str
    episodes: list[Episode] = field(default_factory=list)

    @property
    def flip_images(self) -> bool:
        return self.image_convention == OPENGL

    @property
    def lengths(self) -> np.ndarray:
        return np.array([episode.length for episode in self.episodes], dtype=np.int64)

    @property
    def state_dim(self) -> int:
        return self.episodes[0].state.shape[1]

    @property
    def action_dim(self) -> int:
        return self.episodes[0].action.shape[1]


def image_dataset_path(demo: str, camera: str) -> str:
    return f"{layout.DATA}/{demo}/{layout.OBS}/{image_key(camera)}"


def upright(frames: np.ndarray, convention: str) -> np.ndarray:
    """(..., H, W, 3) frames in `convention` -> upright frames (a view; rows reversed for "opengl")."""
    return frames[..., ::-1, :, :] if convention == OPENGL else frames


def list_task_files(folder: str | Path) -> list[Path]:
    """Sorted ``*.hdf5`` files of a folder, skipping hidden files and unfinished ``*.tmp`` ones."""
    folder = Path(folder)
    if not folder.exists():
        raise DatasetError(f"{folder}: dataset folder does not exist")
    if not folder.is_dir():
        raise DatasetError(f"{folder}: not a folder")
    files = sorted(path for path in folder.iterdir()
                   if path.suffix == ".hdf5" and not path.name.startswith(".") and path.is_file())
    if not files:
        raise DatasetError(f"{folder}: no .hdf5 task files in this folder")
    return files


def resolve_task_files(source: str | Path | Iterable[str | Path]) -> list[Path]:
    """A folder, one file or a list of files -> the task files (each must exist)."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.suffix == ".hdf5" and not path.is_dir():
            return [_existing(path)]
        return list_task_files(path)
    files = [_existing(Path(item)) for item in source]
    if not files:
        raise DatasetError("empty list of task files")
    return files


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise DatasetError(f"{path}: task file does not exist")
    return path


def read_task_file(path: str | Path, state_keys: Sequence[str] | None = ("state",),
                   cameras: Sequence[str] | None = ()) -> TaskEpisodes:
    """Read one task file: low-dimensional data into RAM, image datasets only checked.

    Args:
        path: the ``.hdf5`` file.
        state_keys: obs keys concatenated (in this order) into the (L, Ds) state; None: every
            low-dimensional obs key of the first demo, sorted by name.
        cameras: cameras whose ``obs/<camera>_rgb`` (L, H, W, 3) uint8 must exist; None: all.
    """
    path = Path(path)
    try:
        with h5py.File(path, "r") as file:
            return _read_file(path, file, state_keys, cameras)
    except OSError as error:  # h5py's answer to truncated, corrupt or unreadable files
        raise DatasetError(f"{path}: cannot read HDF5 file ({error})") from error


def check_compatible(task_files: Sequence[TaskEpisodes]) -> None:
    """Files trained on together must agree on action, state and image shapes."""
    first = task_files[0]
    state_key = "obs/" + "+".join(first.state_keys)
    for other in task_files[1:]:
        for what, mine, theirs in (("state keys", first.state_keys, other.state_keys),
                                   ("cameras", first.cameras, other.cameras)):
            if mine != theirs:
                raise DatasetError(f"{other.path}: {what} {theirs} differ from {mine} in {first.path}")
        pairs = [(layout.ACTIONS, first.action_dim, other.action_dim), (state_key, first.state_dim, other.state_dim)]
        pairs += [(f"obs/{image_key(c)}", first.image_shapes[c], other.image_shapes[c]) for c in first.cameras]
        for key, mine, theirs in pairs:
            if mine != theirs:
                raise DatasetError(f"{other.path}: key '{key}' has size {theirs} but {first.path} has {mine}; "
                                   "files read together must match")


def _read_file(path: Path, file: h5py.File, state_keys: Sequence[str] | None,
               cameras: Sequence[str] | None) -> TaskEpisodes:
    data = _child(path, file, layout.DATA, h5py.Group)
    attrs = data.attrs
    demos = sorted((key for key in data if key.startswith(layout.DEMO_PREFIX)), key=lambda k: _demo_number(path, k))
    if not demos:
        raise DatasetError(f"{path}: group 'data' has no '{layout.DEMO_PREFIX}<i>' groups (keys: {sorted(data)})")
    first_obs = _child(path, data[demos[0]], layout.OBS, h5py.Group)
    obs_specs = {key: (tuple(ds.shape[1:]), str(ds.dtype)) for key, ds in first_obs.items()
                 if isinstance(ds, h5py.Dataset)}
    if state_keys is None:
        state_keys = sorted(key for key in obs_specs if layout.camera_of(key) is None)
    if cameras is None:
        cameras = sorted(layout.camera_of(key) for key in obs_specs if layout.camera_of(key) is not None)
    for key in state_keys:
        if layout.camera_of(key) is not None:
            raise DatasetError(f"{path}: state key '{key}' is an image; list camera '{layout.camera_of(key)}' "
                               "under cameras instead")
    result = TaskEpisodes(
        path=path, task=str(attrs["task"]) if "task" in attrs else _task_from_stem(path),
        instruction=_instruction(path, attrs), suite=str(attrs["suite"]) if "suite" in attrs else None,
        image_convention=_image_convention(path, attrs), state_keys=list(state_keys), cameras=list(cameras),
        image_shapes={}, obs_specs=obs_specs, action_dtype="")
    for demo in demos:
        result.episodes.append(_read_demo(path, data[demo], result))
    result.action_dtype = str(data[demos[0]][layout.ACTIONS].dtype)
    return result


def _read_demo(path: Path, group: h5py.Group, task_file: TaskEpisodes) -> Episode:
    """Check one demo's keys and lengths; load actions and state, check (not load) images."""
    actions_ds = _child(path, group, layout.ACTIONS, h5py.Dataset)
    obs = _child(path, group, layout.OBS, h5py.Group)
    length = actions_ds.shape[0] if actions_ds.ndim == 2 else -1
    if length < 1:
        raise DatasetError(f"{path}: key '{actions_ds.name}' must be (T, Da) with T >= 1, got {actions_ds.shape}")
    for key, item in obs.items():
        if isinstance(item, h5py.Dataset) and (item.ndim == 0 or item.shape[0] != length):
            raise DatasetError(f"{path}: key '{item.name}' has shape {item.shape} but '{actions_ds.name}' has "
                               f"{length} steps; observations and actions must have the same length")
    if layout.NUM_SAMPLES in group.attrs and int(group.attrs[layout.NUM_SAMPLES]) != length:
        raise DatasetError(f"{path}: attribute '{layout.NUM_SAMPLES}' of '{group.name}' is "
                           f"{int(group.attrs[layout.NUM_SAMPLES])} but '{actions_ds.name}' has {length} steps")
    parts = [_load(path, _child(path, obs, key, h5py.Dataset)).reshape(length, -1) for key in task_file.state_keys]
    state = np.concatenate(parts, axis=1).astype(np.float32) if parts else np.zeros((length, 0), np.float32)
    action = _load(path, actions_ds).astype(np.float32)
    for name, array in ((f"{obs.name}/" + "+".join(task_file.state_keys), state), (actions_ds.name, action)):
        if not np.isfinite(array).all():
            raise DatasetError(f"{path}: key '{name}' holds NaN or infinite values")
    for camera in task_file.cameras:
        _check_images(path, _child(path, obs, image_key(camera), h5py.Dataset), camera, task_file)
    return Episode(demo=group.name.rsplit("/", 1)[-1], state=state, action=action)


def _check_images(path: Path, images: h5py.Dataset, camera: str, task_file: TaskEpisodes) -> None:
    shape = tuple(images.shape[1:])
    if images.ndim != 4 or shape[-1] != 3 or images.dtype != np.uint8:
        raise DatasetError(f"{path}: key '{images.name}' must be (T, H, W, 3) uint8, got {images.shape} "
                           f"{images.dtype}")
    expected = task_file.image_shapes.setdefault(camera, shape)
    if shape != expected:
        raise DatasetError(f"{path}: key '{images.name}' has frames of {shape}, other demos {expected}")


def _child(path: Path, group: h5py.Group, key: str, kind: type) -> Any:
    """``group[key]``, which must exist and be a `kind`; else an error listing the keys there are."""
    try:
        item = group.get(key)
    except (OSError, KeyError, RuntimeError) as error:
        raise DatasetError(f"{path}: cannot read key '{group.name.rstrip('/')}/{key}' ({error})") from error
    if not isinstance(item, kind):
        what = "is missing" if item is None else f"is not a {kind.__name__}"
        raise DatasetError(f"{path}: key '{group.name.rstrip('/')}/{key}' {what}; keys in '{group.name}': "
                           f"{sorted(group)}")
    return item


def _load(path: Path, dataset: h5py.Dataset) -> np.ndarray:
    try:
        return dataset[()]
    except (OSError, RuntimeError) as error:
        raise DatasetError(f"{path}: cannot read key '{dataset.name}' ({error})") from error


def _demo_number(path: Path, name: str) -> int:
    try:
        return layout.demo_index(name)
    except ValueError:
        raise DatasetError(f"{path}: key 'data/{name}' is not named '{layout.DEMO_PREFIX}<integer>'") from None


def _task_from_stem(path: Path) -> str:
    stem = path.stem
    return stem[: -len("_demo")] if stem.endswith("_demo") else stem


def _instruction(path: Path, attrs: Any) -> str:
    try:
        instruction = layout.instruction_from_attrs(attrs)
    except (json.JSONDecodeError, TypeError, AttributeError) as error:
        raise DatasetError(f"{path}: attribute '{layout.PROBLEM_INFO}' of 'data' is not valid JSON with a "
                           f"language_instruction ({error})") from error
    if not instruction:
        raise DatasetError(f"{path}: 'data' has no instruction: neither attribute 'instruction' nor "
                           f"'{layout.PROBLEM_INFO}' with 'language_instruction'")
    return instruction


def _image_convention(path: Path, attrs: Any) -> str:
    """Attribute ``macros_image_convention``; missing: "opengl" for an original LIBERO file, else "opencv"."""
    if layout.IMAGE_CONVENTION in attrs:
        convention = attrs[layout.IMAGE_CONVENTION]
        convention = convention.decode() if isinstance(convention, bytes) else str(convention)
        if convention not in (OPENGL, OPENCV):
            raise DatasetError(f"{path}: attribute '{layout.IMAGE_CONVENTION}' of 'data' is {convention!r}, "
                               f"expected '{OPENGL}' or '{OPENCV}'")
        return convention
    original_libero = layout.PROBLEM_INFO in attrs and "task" not in attrs
    return OPENGL if original_libero else OPENCV
