"""`python -m datasets.inspect`: a summary and exit code 0 for good files, 1 naming the bad file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

from tests.datasets.conftest import write_libero_file

ROOT = Path(__file__).resolve().parents[2]


def inspect(path: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "datasets.inspect", str(path), *options], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_good_folder_exits_0_with_a_summary(task_folder):
    folder, _ = task_folder
    result = inspect(folder)
    assert result.returncode == 0, result.stderr
    for text in ["reach-v3", "push-v3", "button-press-v3", "do push-v3", "demos: 3, steps: 83",
                 "length min/mean/max: 20/27.7/35", "obs/state: (5,) float32", "actions: (3,) float32",
                 "image convention: opencv", "3 of 3 files read; all valid"]:
        assert text in result.stdout


def test_libero_file_summary(tmp_path):
    path = tmp_path / "LIVING_ROOM_SCENE2_pick_up_the_butter_demo.hdf5"
    write_libero_file(path, [10, 14], "pick up the butter and place it in the basket")
    result = inspect(path)
    assert result.returncode == 0, result.stderr
    for text in ["task: LIVING_ROOM_SCENE2_pick_up_the_butter", "pick up the butter and place it in the basket",
                 "obs/agentview_rgb: (8, 10, 3) uint8", "obs/ee_states: (6,) float64", "actions: (7,) float64",
                 "image convention: opengl (stored upside down, flipped when read)"]:
        assert text in result.stdout


def test_corrupt_file_exits_1_naming_it(task_folder):
    folder, _ = task_folder
    garbage = folder / "broken-v3.hdf5"
    garbage.write_bytes(b"\x00garbage\xff" * 64)
    result = inspect(folder)
    assert result.returncode == 1
    assert str(garbage) in result.stderr and "cannot read HDF5 file" in result.stderr
    assert "push-v3" in result.stdout  # the good files are still summarized


def test_missing_path_exits_1(tmp_path):
    result = inspect(tmp_path / "nowhere")
    assert result.returncode == 1 and "does not exist" in result.stderr


def test_camera_frames_that_are_noise_make_the_file_invalid(image_folder):
    """As a renderer with freed framebuffers wrote them: the first frame fine, the rest noise."""
    folder, written = image_folder
    path = written["open-v3"].path
    with h5py.File(path, "r+") as file:
        frames = file["data/demo_1/obs/corner_rgb"]
        frames[1:] = np.random.default_rng(0).integers(0, 256, frames[1:].shape, dtype=np.uint8)
    sampled, every = inspect(folder), inspect(folder, "--all-frames")
    assert sampled.returncode == every.returncode == 1
    assert f"{path}: corrupt camera frames" in sampled.stderr
    assert "/data/demo_1/obs/corner_rgb: 2 of 3 checked frames are garbage, first at step 15: noise" in sampled.stderr
    assert "/data/demo_1/obs/corner_rgb: 29 of 30 checked frames are garbage, first at step 1: noise" in every.stderr
    assert "demo_0" not in sampled.stderr and "gripper_rgb" not in sampled.stderr
    assert "1 of 2 files read; 1 error(s)" in sampled.stdout


def test_clean_camera_frames_pass_every_frame_check(image_folder):
    folder, _ = image_folder
    result = inspect(folder, "--all-frames")
    assert result.returncode == 0, result.stderr
