"""Writing demonstrations in the robomimic / LIBERO layout (see `datasets.layout`), atomically."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from common.atomic import atomic_path
from common.schema import OBS_RGB_PREFIX, OBS_STATE
from datasets import layout

DEFAULT_STATE_LAYOUT = (("state", None),)  # obs.state stored whole as obs/state


def split_state(state: np.ndarray, state_layout: Sequence[tuple[str, int | None]]) -> dict[str, np.ndarray]:
    """(T, Ds) ``obs.state`` -> {obs key: (T, width)} in layout order; a width of None takes the rest.

    E.g. LIBERO's (("ee_pos", 3), ("ee_ori", 3), ("gripper_states", 2)) gives the official files' keys,
    and reading them back in that order (dataset.state_keys) restores ``obs.state`` exactly.
    """
    widths = [state.shape[1] if width is None else width for _, width in state_layout]
    if sum(widths) != state.shape[1]:
        raise ValueError(f"obs.state has {state.shape[1]} columns but the state layout {list(state_layout)} "
                         f"covers {sum(widths)}")
    parts = np.split(state, np.cumsum(widths)[:-1], axis=1)
    return {key: part for (key, _), part in zip(state_layout, parts)}


def _attr(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (dict, list, tuple)) else value


def write_task_file(path: Path, episodes: Sequence[dict[str, np.ndarray]], attrs: dict[str, Any],
                    state_layout: Sequence[tuple[str, int | None]] = DEFAULT_STATE_LAYOUT) -> Path:
    """Write one task's episodes to `path`, first under a temporary name, renamed when complete
    (`common.atomic.atomic_path`; a full disk raises DiskFullError naming the file).

    Args:
        episodes: per episode, ``actions`` (T, Da), ``rewards`` (T,), ``dones`` (T,) and observation
            arrays under batch keys: ``obs.state`` (T, Ds), ``obs.rgb.<camera>`` (T, 3, H, W) uint8,
            and optionally ``attrs`` (a dict stored on the demo group). Other keys are ignored.
        attrs: attributes of the ``data`` group; dicts and lists are stored as JSON.
        state_layout: (obs key, width) pairs ``obs.state`` is split into (`split_state`); the suite's.
    """
    if not episodes:
        raise ValueError(f"no episodes to write to {path}")
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as file:
        data = file.create_group(layout.DATA)
        for key, value in attrs.items():
            data.attrs[key] = _attr(value)
        data.attrs[layout.IMAGE_CONVENTION] = "opencv"  # stored upright
        data.attrs["format_version"] = layout.FORMAT_VERSION
        data.attrs["total"] = int(sum(len(e["actions"]) for e in episodes))
        for index, episode in enumerate(episodes):
            _write_demo(data.create_group(layout.demo_name(index)), episode, state_layout)
    return path


def _write_demo(group: h5py.Group, episode: dict[str, np.ndarray],
                state_layout: Sequence[tuple[str, int | None]]) -> None:
    length = len(episode["actions"])
    group.attrs[layout.NUM_SAMPLES] = length
    for key, value in episode.get("attrs", {}).items():
        group.attrs[key] = _attr(value)
    group.create_dataset(layout.ACTIONS, data=np.asarray(episode["actions"], np.float32))
    group.create_dataset(layout.REWARDS, data=np.asarray(episode["rewards"], np.float32))
    group.create_dataset(layout.DONES, data=np.asarray(episode["dones"], np.uint8))
    obs = group.create_group(layout.OBS)
    for key, array in episode.items():
        if key != OBS_STATE and not key.startswith(OBS_RGB_PREFIX):
            continue
        if len(array) != length:
            raise ValueError(f"{key} has {len(array)} steps but actions have {length}")
        if key == OBS_STATE:
            for name, part in split_state(np.asarray(array, np.float32), state_layout).items():
                obs.create_dataset(name, data=part)
        else:  # (T, 3, H, W) -> (T, H, W, 3), one chunk per frame for random reads
            frames = np.ascontiguousarray(np.asarray(array, np.uint8).transpose(0, 2, 3, 1))
            obs.create_dataset(layout.image_key(key[len(OBS_RGB_PREFIX):]), data=frames,
                               chunks=(1, *frames.shape[1:]))
