"""Reading our layout and the official LIBERO layout; every bad input names its file and key."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from datasets.config import DatasetConfig
from datasets.reader import DatasetError, list_task_files, read_task_file, upright
from datasets.sequence_dataset import MultitaskSequenceDataset
from tests.datasets.conftest import LIBERO_STATE_KEYS, write_libero_file, write_task_file


def test_reads_our_layout(task_folder):
    folder, written = task_folder
    expected = written["button-press-v3"]
    task_file = read_task_file(folder / "button-press-v3.hdf5")
    assert (task_file.task, task_file.instruction, task_file.suite) == ("button-press-v3", "do button-press-v3",
                                                                         "test_suite")
    assert task_file.image_convention == "opencv" and not task_file.flip_images
    assert task_file.lengths.tolist() == [20, 35, 28]
    assert [e.demo for e in task_file.episodes] == ["demo_0", "demo_1", "demo_2"]
    for episode, state, action in zip(task_file.episodes, expected.states, expected.actions):
        assert episode.state.dtype == np.float32 and episode.action.dtype == np.float32
        np.testing.assert_array_equal(episode.state, state)
        np.testing.assert_array_equal(episode.action, action)
    assert task_file.obs_specs == {"state": ((5,), "float32")}


def test_demos_are_ordered_by_number_not_name(tmp_path):
    write_task_file(tmp_path / "t.hdf5", "t", [5] * 12)
    with h5py.File(tmp_path / "t.hdf5", "a") as file:
        file["data/demo_10/actions"][0, 0] = 42.0
    task_file = read_task_file(tmp_path / "t.hdf5")
    assert [e.demo for e in task_file.episodes][9:] == ["demo_9", "demo_10", "demo_11"]
    assert task_file.episodes[10].action[0, 0] == 42.0


def test_reads_official_libero_layout_upright(tmp_path):
    path = tmp_path / "KITCHEN_SCENE3_turn_on_the_stove_demo.hdf5"
    written = write_libero_file(path, [12, 15], "turn on the stove")
    task_file = read_task_file(path, ["ee_states", "gripper_states"], ["agentview", "eye_in_hand"])
    assert task_file.task == "KITCHEN_SCENE3_turn_on_the_stove"
    assert task_file.instruction == "turn on the stove"
    assert task_file.image_convention == "opengl" and task_file.flip_images
    assert task_file.image_shapes == {"agentview": (8, 10, 3), "eye_in_hand": (8, 10, 3)}
    assert task_file.action_dtype == "float64" and task_file.action_dim == 7 and task_file.state_dim == 8
    assert set(task_file.obs_specs) == set(LIBERO_STATE_KEYS) | {"agentview_rgb", "eye_in_hand_rgb"}
    for episode, obs, action in zip(task_file.episodes, written.obs, written.actions):
        expected_state = np.concatenate([obs["ee_states"], obs["gripper_states"]], axis=1).astype(np.float32)
        np.testing.assert_array_equal(episode.state, expected_state)
        np.testing.assert_array_equal(episode.action, action.astype(np.float32))

    dataset = MultitaskSequenceDataset(DatasetConfig(path=str(path), state_keys=["ee_states", "gripper_states"],
                                                     cameras=["agentview", "eye_in_hand"], n_obs_steps=1))
    frame = dataset[0]["obs.rgb.agentview"][0].numpy()  # (3, H, W)
    assert (frame[1, :4] == 200).all() and (frame[1, 4:] == 20).all(), "top half must be on top"
    assert (frame[2, :, :5] == 100).all() and (frame[2, :, 5:] == 0).all(), "a vertical flip keeps left left"
    np.testing.assert_array_equal(frame, written.images["agentview"][0][0].transpose(2, 0, 1))


@pytest.mark.parametrize("convention", ["opengl", "opencv"])
def test_image_convention_attribute_decides_the_flip(tmp_path, convention):
    written = write_task_file(tmp_path / "t.hdf5", "t", [9], cameras=("corner",), convention=convention)
    task_file = read_task_file(tmp_path / "t.hdf5", cameras=["corner"])
    assert task_file.image_convention == convention
    with h5py.File(tmp_path / "t.hdf5") as file:
        stored = file["data/demo_0/obs/corner_rgb"][()]
    np.testing.assert_array_equal(upright(stored, convention), written.images["corner"][0])


def test_list_task_files_skips_hidden_and_unfinished(tmp_path):
    for name in ["b.hdf5", "a.hdf5", ".hidden.hdf5", "c.hdf5.tmp", "notes.txt"]:
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in list_task_files(tmp_path)] == ["a.hdf5", "b.hdf5"]


# --- bad input: every case raises DatasetError naming the file (or folder) and the key ---------------

def _edit(path: Path, edit) -> None:
    with h5py.File(path, "a") as file:
        edit(file)


def _replace(file: h5py.File, key: str, value: np.ndarray) -> None:
    del file[key]
    file[key] = value


BAD_FILE_CASES = {
    "no data group": (lambda f: f.move("data", "stuff"), ["data", "stuff"]),
    "demo without actions": (lambda f: f.__delitem__("data/demo_1/actions"), ["data/demo_1/actions", "obs"]),
    "state key absent": (lambda f: f.move("data/demo_0/obs/state", "data/demo_0/obs/robot_state"),
                         ["data/demo_0/obs/state", "robot_state"]),
    "actions shorter than obs": (lambda f: _replace(f, "data/demo_1/actions", np.zeros((6, 3), np.float32)),
                                 ["data/demo_1/obs/state", "data/demo_1/actions"]),
    "no demos": (lambda f: [f["data"].__delitem__(k) for k in list(f["data"])], ["data", "demo_"]),
    "num_samples disagrees": (lambda f: f["data/demo_1"].attrs.__setitem__("num_samples", 9),
                              ["num_samples", "data/demo_1"]),
    "NaN actions": (lambda f: f["data/demo_0/actions"].__setitem__((2, 1), np.nan), ["data/demo_0/actions", "NaN"]),
}


@pytest.mark.parametrize("case", BAD_FILE_CASES)
def test_bad_file_raises_naming_file_and_key(tmp_path, case):
    edit, fragments = BAD_FILE_CASES[case]
    path = tmp_path / "bad-task.hdf5"
    write_task_file(path, "bad-task", [8, 8])
    _edit(path, edit)
    with pytest.raises(DatasetError) as error:
        read_task_file(path)
    for fragment in [str(path), *fragments]:
        assert fragment in str(error.value)


def test_missing_camera_lists_existing_keys(tmp_path):
    path = tmp_path / "t.hdf5"
    write_task_file(path, "t", [8], cameras=("corner",))
    existing = r"\['corner_rgb', 'state'\]"
    with pytest.raises(DatasetError, match=rf"data/demo_0/obs/wrist_rgb' is missing.*{existing}") as error:
        read_task_file(path, cameras=["wrist"])
    assert str(path) in str(error.value)


def test_image_with_wrong_dtype_raises(tmp_path):
    path = tmp_path / "t.hdf5"
    write_task_file(path, "t", [8], cameras=("corner",))
    _edit(path, lambda f: _replace(f, "data/demo_0/obs/corner_rgb", np.zeros((8, 4, 4, 3), np.float32)))
    with pytest.raises(DatasetError, match="corner_rgb' must be \\(T, H, W, 3\\) uint8") as error:
        read_task_file(path, cameras=["corner"])
    assert str(path) in str(error.value)


def test_missing_folder_raises(tmp_path):
    with pytest.raises(DatasetError, match="does not exist") as error:
        MultitaskSequenceDataset(DatasetConfig(path=str(tmp_path / "nowhere")))
    assert str(tmp_path / "nowhere") in str(error.value)


def test_empty_folder_raises(tmp_path):
    (tmp_path / "readme.txt").write_text("no data here")
    with pytest.raises(DatasetError, match="no .hdf5 task files") as error:
        MultitaskSequenceDataset(DatasetConfig(path=str(tmp_path)))
    assert str(tmp_path) in str(error.value)


@pytest.mark.parametrize("key, sizes", [("actions", dict(action_dim=4)), ("obs/state", dict(state_dim=6))])
def test_mismatched_dims_across_files_raise(tmp_path, key, sizes):
    write_task_file(tmp_path / "a.hdf5", "a", [20])
    write_task_file(tmp_path / "b.hdf5", "b", [20], **sizes)
    with pytest.raises(DatasetError) as error:
        MultitaskSequenceDataset(DatasetConfig(path=str(tmp_path)))
    message = str(error.value)
    assert f"'{key}'" in message and str(tmp_path / "a.hdf5") in message and str(tmp_path / "b.hdf5") in message


def test_truncated_file_raises(tmp_path):
    path = tmp_path / "t.hdf5"
    write_task_file(path, "t", [50, 50])
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    with pytest.raises(DatasetError, match="cannot read") as error:
        read_task_file(path)
    assert str(path) in str(error.value)


def test_garbage_file_raises(tmp_path):
    path = tmp_path / "garbage.hdf5"
    path.write_bytes(b"this is not HDF5" * 100)
    with pytest.raises(DatasetError, match="cannot read HDF5 file") as error:
        MultitaskSequenceDataset(DatasetConfig(path=str(tmp_path)))
    assert str(path) in str(error.value)


def test_missing_instruction_raises(tmp_path):
    path = tmp_path / "t.hdf5"
    write_task_file(path, "t", [8])
    _edit(path, lambda f: f["data"].attrs.__delitem__("instruction"))
    with pytest.raises(DatasetError, match="instruction.*problem_info") as error:
        read_task_file(path)
    assert str(path) in str(error.value)


def test_unknown_image_convention_raises(tmp_path):
    path = tmp_path / "t.hdf5"
    write_task_file(path, "t", [8], convention="directx")
    with pytest.raises(DatasetError, match="macros_image_convention.*directx") as error:
        read_task_file(path)
    assert str(path) in str(error.value)
