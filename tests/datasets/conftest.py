"""Small HDF5 task files written with h5py: our layout and the official LIBERO layout."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pytest

from datasets import layout

IMAGE_SIZE = (8, 10)  # (H, W): not square, so a transposed image would not fit
LIBERO_STATE_KEYS = {"gripper_states": 2, "joint_states": 7, "ee_pos": 3, "ee_ori": 3, "ee_states": 6}


@dataclass
class Written:
    """What a test file holds, upright, for comparison with what is read back."""

    path: Path
    task: str
    instruction: str
    states: list[np.ndarray] = field(default_factory=list)  # per demo (L, Ds) float32 ("state" key)
    obs: list[dict[str, np.ndarray]] = field(default_factory=list)  # per demo: obs key -> array as stored
    actions: list[np.ndarray] = field(default_factory=list)  # per demo (L, Da)
    images: dict[str, list[np.ndarray]] = field(default_factory=dict)  # camera -> per demo (L, H, W, 3) upright


def upright_frames(length: int, seed: int) -> np.ndarray:
    """(L, H, W, 3) uint8: channel 0 = frame number + seed, 1 = top/bottom half, 2 = left/right half."""
    height, width = IMAGE_SIZE
    frames = np.zeros((length, height, width, 3), dtype=np.uint8)
    frames[..., 0] = ((np.arange(length) + seed) % 256)[:, None, None]
    frames[:, : height // 2, :, 1] = 200  # top
    frames[:, height // 2:, :, 1] = 20  # bottom
    frames[:, :, : width // 2, 2] = 100  # left
    return frames


def write_task_file(path: Path, task: str, lengths: list[int], *, state_dim: int = 5, action_dim: int = 3,
                    cameras: tuple[str, ...] = (), convention: str | None = "opencv", seed: int = 0,
                    instruction: str | None = None) -> Written:
    """A task file in our layout: obs/state (L, Ds), optional obs/<camera>_rgb, attrs on data."""
    rng = np.random.default_rng(seed)
    instruction = instruction or f"do {task}"
    written = Written(path=path, task=task, instruction=instruction, images={c: [] for c in cameras})
    with h5py.File(path, "w") as file:
        data = file.create_group(layout.DATA)
        data.attrs.update(task=task, suite="test_suite", instruction=instruction, task_index=0,
                          total=sum(lengths))
        if convention is not None:
            data.attrs[layout.IMAGE_CONVENTION] = convention
        for i, length in enumerate(lengths):
            demo = data.create_group(layout.demo_name(i))
            demo.attrs[layout.NUM_SAMPLES] = length
            state = rng.normal(size=(length, state_dim)).astype(np.float32)
            action = rng.uniform(-1, 1, size=(length, action_dim)).astype(np.float32)
            demo.create_dataset(f"{layout.OBS}/state", data=state)
            demo.create_dataset(layout.ACTIONS, data=action)
            demo.create_dataset(layout.REWARDS, data=np.zeros(length))
            demo.create_dataset(layout.DONES, data=np.zeros(length, dtype=np.uint8))
            for c, camera in enumerate(cameras):
                frames = upright_frames(length, seed=100 * i + 10 * c + seed)
                stored = frames[:, ::-1] if convention == "opengl" else frames
                demo.create_dataset(f"{layout.OBS}/{camera}_rgb", data=stored)
                written.images[camera].append(frames)
            written.states.append(state)
            written.actions.append(action)
            written.obs.append({"state": state})
    return written


def write_libero_file(path: Path, lengths: list[int], instruction: str, seed: int = 0) -> Written:
    """An original LIBERO demo file: problem_info JSON, no `task` attribute, images upside down."""
    rng = np.random.default_rng(seed)
    task = path.stem.removesuffix("_demo")
    written = Written(path=path, task=task, instruction=instruction,
                      images={"agentview": [], "eye_in_hand": []})
    with h5py.File(path, "w") as file:
        data = file.create_group(layout.DATA)
        data.attrs[layout.PROBLEM_INFO] = json.dumps({"problem_name": "libero_kitchen_tabletop_manipulation",
                                                      "domain_name": "robosuite",
                                                      "language_instruction": instruction})
        data.attrs["env_args"] = json.dumps({"env_name": "Libero_Kitchen_Tabletop_Manipulation", "type": 1})
        data.attrs["total"] = sum(lengths)
        for i, length in enumerate(lengths):
            demo = data.create_group(layout.demo_name(i))
            demo.attrs[layout.NUM_SAMPLES] = length
            obs = {key: rng.normal(size=(length, dim)) for key, dim in LIBERO_STATE_KEYS.items()}  # float64
            for key, value in obs.items():
                demo.create_dataset(f"obs/{key}", data=value)
            for c, camera in enumerate(("agentview", "eye_in_hand")):
                frames = upright_frames(length, seed=100 * i + 10 * c)
                demo.create_dataset(f"obs/{camera}_rgb", data=frames[:, ::-1])  # OpenGL rows: bottom first
                written.images[camera].append(frames)
            action = rng.uniform(-1, 1, size=(length, 7))
            demo.create_dataset("actions", data=action)
            demo.create_dataset("rewards", data=np.zeros(length, dtype=np.uint8))
            demo.create_dataset("dones", data=np.zeros(length, dtype=np.uint8))
            written.obs.append(obs)
            written.actions.append(action)
    return written


@pytest.fixture
def task_folder(tmp_path: Path) -> tuple[Path, dict[str, Written]]:
    """Three Meta-World-like task files, state only; task names out of sorted order on disk."""
    folder = tmp_path / "tasks"
    folder.mkdir()
    specs = {"reach-v3": [30, 25], "push-v3": [40], "button-press-v3": [20, 35, 28]}
    written = {task: write_task_file(folder / f"{task}.hdf5", task, lengths, seed=s)
               for s, (task, lengths) in enumerate(specs.items())}
    return folder, written


@pytest.fixture
def image_folder(tmp_path: Path) -> tuple[Path, dict[str, Written]]:
    """Two task files with two cameras, one stored upright and one upside down."""
    folder = tmp_path / "images"
    folder.mkdir()
    written = {
        "open-v3": write_task_file(folder / "open-v3.hdf5", "open-v3", [22, 30], cameras=("corner", "gripper"),
                                   convention="opencv", seed=1),
        "close-v3": write_task_file(folder / "close-v3.hdf5", "close-v3", [26], cameras=("corner", "gripper"),
                                    convention="opengl", seed=2),
    }
    return folder, written
