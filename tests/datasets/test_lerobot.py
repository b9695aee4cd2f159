"""LeRobotDataset v3 folders (written by the tests, tests/datasets/lerobot_folder.py): windows, task strings,
upright images from AV1 video and parquet images, statistics, DataLoader workers, inspection, named errors."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from common.schema import ACTION, ACTION_IS_PAD, OBS_STATE, TASK_INDEX, TASK_INSTRUCTION, rgb_key
from datasets import inspect
from datasets.config import DatasetConfig, DatasetFormat, ImageOrientation, LeRobotConfig
from datasets.reader import DatasetError
from datasets.sequence_dataset import MultitaskSequenceDataset
from datasets.statistics import load_or_compute_statistics, statistics_cache_path, statistics_fingerprint
from tests.datasets.lerobot_folder import LeRobotEpisode, grey_level, marked_frames, write_lerobot_folder

TASKS = ["pick the red block", "open the drawer"]
LENGTHS, EPISODE_TASKS = [12, 9, 15, 10], [0, 1, 0, 1]
FRONT, WRIST = "observation.images.front", "observation.images.wrist"
FRONT_SHAPE, WRIST_SHAPE = (24, 40), (16, 24)  # (H, W), not square


def _episodes(turn=lambda frames: frames) -> list[LeRobotEpisode]:
    """state (L, 4) = [episode, t, t / 2, 1]; action (L, 2) = [100 episode + t, -t]; frames stored as `turn` says."""
    episodes = []
    for number, (length, task) in enumerate(zip(LENGTHS, EPISODE_TASKS)):
        t = np.arange(length, dtype=np.float32)
        state = np.stack([np.full(length, number), t, t / 2, np.ones(length)], axis=1)
        action = np.stack([100 * number + t, -t], axis=1)
        frames = {FRONT: turn(marked_frames(length, *FRONT_SHAPE, number)),
                  WRIST: turn(marked_frames(length, *WRIST_SHAPE, number))}
        episodes.append(LeRobotEpisode(task, state, action, frames))
    return episodes


def _write(root: Path, turn=lambda frames: frames, codec: str = "libsvtav1", image_keys=(WRIST,)) -> Path:
    return write_lerobot_folder(root, TASKS, _episodes(turn), video_keys=(FRONT,), image_keys=image_keys, codec=codec)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return _write(tmp_path_factory.mktemp("lerobot") / "set")


def _config(path: Path, **fields) -> DatasetConfig:
    lerobot = fields.pop("lerobot", LeRobotConfig(camera_features={"front": FRONT, "wrist": WRIST}))
    return DatasetConfig(**{"path": str(path), "format": DatasetFormat.lerobot, "state_keys": ["observation.state"],
                            "cameras": ["front", "wrist"], "n_obs_steps": 2, "horizon": 4, "n_action_steps": 2,
                            "lerobot": lerobot, **fields})


def _sample_at(dataset: MultitaskSequenceDataset, episode: int, step: int) -> dict:
    """The window whose current step is `step` of `episode` (the state says which)."""
    for index in range(len(dataset)):
        sample = dataset[index]
        if sample[OBS_STATE][-1, 0] == episode and sample[OBS_STATE][-1, 1] == step:
            return sample
    raise AssertionError(f"no window at episode {episode} step {step}")


def _check_upright(frames: torch.Tensor, episode: int, steps: list[int]) -> None:
    """(To, 3, H, W) frames: the step's grey level, the white block top-left."""
    for frame, step in zip(frames.permute(0, 2, 3, 1).numpy(), steps):
        assert abs(grey_level(frame) - (40 + 10 * step + 5 * episode)) < 6, (grey_level(frame), step)
        height, width = frame.shape[:2]
        assert frame[: height // 3, : width // 3].mean() > 230  # the block: top-left, so upright and unmirrored
        assert frame[: height // 3, -(width // 3):].mean() < 200


def test_windows_tasks_and_upright_frames_from_av1_video_and_parquet_images(folder):
    dataset = MultitaskSequenceDataset(_config(folder))
    assert [name for _, name, _ in dataset.tasks] == sorted(TASKS)  # the task's text names it, sorted
    assert dataset.num_episodes == 4 and len(dataset) == sum(n - 4 + 2 for n in LENGTHS)
    assert dataset.image_shapes == {"front": (3, *FRONT_SHAPE), "wrist": (3, *WRIST_SHAPE)}
    assert (dataset.state_dim, dataset.action_dim) == (4, 2)

    first = _sample_at(dataset, 2, 0)  # episode 2 (task 0), first step: step 0 repeated
    np.testing.assert_array_equal(first[OBS_STATE][:, 1], [0, 0])
    np.testing.assert_array_equal(first[ACTION][:, 0], [200, 201, 202, 203])
    assert not first[ACTION_IS_PAD].any() and first[TASK_INSTRUCTION] == "pick the red block"
    assert int(first[TASK_INDEX]) == sorted(TASKS).index("pick the red block")
    _check_upright(first[rgb_key("front")], 2, [0, 0])
    np.testing.assert_array_equal(first[rgb_key("wrist")].permute(0, 2, 3, 1).numpy(),
                                  marked_frames(1, *WRIST_SHAPE, 2)[[0, 0]])  # PNG: exact

    last = _sample_at(dataset, 1, 9 - 4 + 2 - 1)  # episode 1 (9 steps): the last window runs one step past the end
    np.testing.assert_array_equal(last[ACTION][:, 0], [106, 107, 108, 108])
    np.testing.assert_array_equal(last[ACTION_IS_PAD].numpy(), [False, False, False, True])
    assert last[TASK_INSTRUCTION] == "open the drawer"
    _check_upright(last[rgb_key("front")], 1, [5, 6])  # second data and video file, second episode in it


@pytest.mark.parametrize("orientation, turn", [
    (ImageOrientation.rotate180, lambda f: f[:, ::-1, ::-1]),  # public LIBERO sets: turned by 180 degrees
    (ImageOrientation.flip_horizontal, lambda f: f[:, :, ::-1]),
    (ImageOrientation.flip_vertical, lambda f: f[:, ::-1]),
])
def test_stored_orientation_is_undone_and_reading_it_as_upright_would_not_be(tmp_path, orientation, turn):
    root = _write(tmp_path / "turned", turn=lambda frames: np.ascontiguousarray(turn(frames)))
    lerobot = LeRobotConfig(camera_features={"front": FRONT, "wrist": WRIST}, image_orientation=orientation)
    sample = _sample_at(MultitaskSequenceDataset(_config(root, lerobot=lerobot)), 3, 4)
    _check_upright(sample[rgb_key("front")], 3, [3, 4])
    np.testing.assert_array_equal(sample[rgb_key("wrist")].permute(0, 2, 3, 1).numpy(),
                                  marked_frames(5, *WRIST_SHAPE, 3)[[3, 4]])
    as_stored = _sample_at(MultitaskSequenceDataset(_config(root, cameras=["front"], lerobot=LeRobotConfig(
        camera_features={"front": FRONT}))), 3, 4)
    with pytest.raises(AssertionError):
        _check_upright(as_stored[rgb_key("front")], 3, [3, 4])


def test_h264_videos_and_cached_images_give_the_same_samples(tmp_path, folder):
    h264 = _write(tmp_path / "h264", codec="libx264", image_keys=())
    config = _config(h264, cameras=["front"], lerobot=LeRobotConfig(camera_features={"front": FRONT}))
    streamed, cached = MultitaskSequenceDataset(config), MultitaskSequenceDataset(
        DatasetConfig(**{**config.__dict__, "cache_images": True}))
    for index in (0, 17, len(streamed) - 1):
        np.testing.assert_array_equal(streamed[index][rgb_key("front")], cached[index][rgb_key("front")])
    _check_upright(_sample_at(cached, 2, 7)[rgb_key("front")], 2, [6, 7])


def test_statistics_are_those_of_every_frame_and_cached_beside_the_folder(folder):
    dataset = MultitaskSequenceDataset(_config(folder, cameras=[]))
    stats = load_or_compute_statistics(dataset)
    actions = np.concatenate([e.action for e in _episodes()])
    np.testing.assert_allclose(stats[ACTION]["mean"], actions.mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(stats[ACTION]["max"], actions.max(axis=0))
    assert statistics_cache_path(dataset).parent == folder and statistics_cache_path(dataset).exists()
    other = MultitaskSequenceDataset(_config(folder, cameras=[], lerobot=LeRobotConfig(action_feature="observation.state")))
    assert statistics_fingerprint(other) != statistics_fingerprint(dataset)  # another action, another cache


def test_a_changed_data_file_gives_another_statistics_cache(folder, tmp_path):
    copy = shutil.copytree(folder, tmp_path / "copy")
    before = statistics_fingerprint(MultitaskSequenceDataset(_config(copy, cameras=[])))
    data_file = next((copy / "data").glob("*/*.parquet"))
    os.utime(data_file, ns=(data_file.stat().st_atime_ns, data_file.stat().st_mtime_ns + 10**9))
    assert statistics_fingerprint(MultitaskSequenceDataset(_config(copy, cameras=[]))) != before


def test_dataloader_workers_open_their_own_video_handles(folder):
    dataset = MultitaskSequenceDataset(_config(folder))
    dataset[0]  # opens handles in this process: they must not travel to the workers
    loader = torch.utils.data.DataLoader(dataset, batch_size=8, num_workers=2, shuffle=False)
    batches = list(loader)
    assert sum(len(b[ACTION]) for b in batches) == len(dataset)
    np.testing.assert_array_equal(batches[0][rgb_key("front")][0], dataset[0][rgb_key("front")])


def test_suite_tasks_are_matched_by_instruction(folder):
    config = _config(folder, cameras=[], task_names=["drawer-open", "pick-block"],
                     task_instructions=["open the drawer", "pick the red block"])
    dataset = MultitaskSequenceDataset(config)
    assert dataset.tasks == [(0, "drawer-open", "open the drawer"), (1, "pick-block", "pick the red block")]
    with pytest.raises(DatasetError, match=r"tasks\.parquet: task 0 'pick the red block' is the instruction of no"):
        MultitaskSequenceDataset(_config(folder, cameras=[], task_names=["drawer-open"],
                                         task_instructions=["open the drawer"]))


def test_inspect_summarises_a_folder_and_fails_on_a_broken_one(folder, tmp_path, capsys):
    assert inspect.main([str(folder)]) == 0
    out = capsys.readouterr().out
    assert "LeRobotDataset v3.0" in out and "episodes: 4, frames: 46" in out
    assert "task 0: pick the red block (2 episodes)" in out
    assert f"{FRONT}: video (24, 40, 3) av1 [camera front]" in out and "observation.state: (4,) float32 [state]" in out
    assert "all valid" in out
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    (broken / "videos" / FRONT / "chunk-000" / "file-001.mp4").write_bytes(b"not a video")
    assert inspect.main([str(broken)]) == 1
    assert "file-001.mp4: cannot decode the video of feature 'observation.images.front'" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ named errors


def _set_info(root: Path, change) -> None:
    info = json.loads((root / "meta" / "info.json").read_text())
    change(info)
    (root / "meta" / "info.json").write_text(json.dumps(info))


def _set_episodes(root: Path, column: str, values: list) -> None:
    path = root / "meta" / "episodes" / "chunk-000" / "file-000.parquet"
    table = pq.read_table(path)
    table = table.set_column(table.column_names.index(column), column, pa.array(values, table.schema.field(column).type))
    pq.write_table(table, path)


def _corrupt_image(root: Path) -> None:
    path = root / "data" / "chunk-000" / "file-001.parquet"
    table = pq.read_table(path)
    images = table.column(WRIST).to_pylist()
    images[3] = {"bytes": b"\x89PNG broken", "path": None}
    pq.write_table(table.set_column(table.column_names.index(WRIST), WRIST, pa.array(images, table.schema.field(WRIST).type)),
                   path)


MP4_1 = f"videos/{FRONT}/chunk-000/file-001.mp4"
BROKEN = {
    "no info.json": (lambda r: (r / "meta" / "info.json").unlink(), {}, r"meta/info\.json: meta file is missing"),
    "no tasks": (lambda r: (r / "meta" / "tasks.parquet").unlink(), {}, r"meta/tasks\.parquet: meta file is missing"),
    "no episodes": (lambda r: shutil.rmtree(r / "meta" / "episodes"), {}, r"meta/episodes: meta files are missing"),
    "version 2.1": (lambda r: _set_info(r, lambda i: i.update(codebase_version="v2.1")), {},
                    r"info\.json: key 'codebase_version' is 'v2\.1'"),
    "missing feature": (lambda r: None, {"state_keys": ["observation.joints"]},
                        r"info\.json: feature 'observation\.joints' \(dataset\.state_keys\) is missing"),
    "missing camera": (lambda r: None, {"cameras": ["side"]},
                       r"info\.json: feature 'observation\.images\.side' \(camera 'side'\) is missing"),
    "wrong shape": (lambda r: _set_info(r, lambda i: i["features"]["action"].update(shape=[3])), {},
                    r"file-000\.parquet: key 'action' has shape \(2,\) per frame, but meta/info\.json says \(3,\)"),
    "wrong frame size": (lambda r: _set_info(r, lambda i: i["features"][FRONT].update(shape=[24, 48, 3])), {},
                         (r"file-000\.mp4: frames of feature 'observation\.images\.front' are \(24, 40, 3\), but "
                          r"meta/info\.json says \(24, 48, 3\)")),
    "undecodable video": (lambda r: (r / MP4_1).write_bytes(b"\x00" * 100), {},
                          r"file-001\.mp4: cannot decode the video of feature 'observation\.images\.front'"),
    "missing video": (lambda r: (r / MP4_1).unlink(), {},
                      r"file-001\.mp4: video of feature 'observation\.images\.front' does not exist"),
    "frame times off": (lambda r: _set_episodes(r, f"videos/{FRONT}/from_timestamp", [0.0, 1.2, 0.0, 1.05]), {},
                        r"file-001\.mp4: feature 'observation\.images\.front' has no frame at t=1\.0500 s"),
    "wrong length": (lambda r: _set_episodes(r, "length", [12, 8, 15, 10]), {},
                     r"file-000\.parquet: key 'frame_index' of episode 1 is not 0\.\.7"),
    "missing data file": (lambda r: (r / "data" / "chunk-000" / "file-001.parquet").unlink(), {},
                          r"file-001\.parquet: data file of episode 2 does not exist"),
    "bad image": (_corrupt_image, {}, r"file-001\.parquet: key 'observation\.images\.wrist' holds an image that cannot"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_every_mismatch_is_a_named_dataset_error(folder, tmp_path, case):
    break_it, fields, message = BROKEN[case]
    root = tmp_path / "set"
    shutil.copytree(folder, root)
    break_it(root)
    with pytest.raises(DatasetError, match=message):
        dataset = MultitaskSequenceDataset(_config(root, **fields))
        for index in range(len(dataset)):  # frames are decoded when read
            dataset[index]
