"""Windows at episode edges, task indices, images, DataLoader workers and task-balanced sampling."""

from __future__ import annotations

import logging
import pickle

import numpy as np
import pytest
import torch
from hydra.core.config_store import ConfigStore
from torch.utils.data import DataLoader

from common.schema import ACTION, ACTION_IS_PAD, OBS_STATE, TASK_INDEX, TASK_INSTRUCTION, rgb_key
from datasets.config import DatasetConfig
from datasets.reader import DatasetError
from datasets.sampling import sample_weights, task_balanced_weights
from datasets.sequence_dataset import MultitaskSequenceDataset
from tests.datasets.conftest import write_task_file

TO, T, TA = 3, 6, 4


def dataset_of(path, **overrides) -> MultitaskSequenceDataset:
    window = {"n_obs_steps": TO, "horizon": T, "n_action_steps": TA}
    path = [str(p) for p in path] if isinstance(path, list) else str(path)
    return MultitaskSequenceDataset(DatasetConfig(path=path, **{**window, **overrides}))


def expected_window(state: np.ndarray, action: np.ndarray, t: int):
    """Reference, one step at a time: obs t-To+1..t clamped at 0, actions t..t+T-1 clamped at L-1."""
    last = len(action) - 1
    obs = np.stack([state[max(s, 0)] for s in range(t - TO + 1, t + 1)])
    actions = np.stack([action[min(s, last)] for s in range(t, t + T)])
    return obs, actions, np.array([s > last for s in range(t, t + T)])


def test_sample_keys_shapes_and_dtypes(task_folder):
    folder, _ = task_folder
    sample = dataset_of(folder)[0]
    assert set(sample) == {OBS_STATE, ACTION, ACTION_IS_PAD, TASK_INDEX, TASK_INSTRUCTION}
    assert sample[OBS_STATE].shape == (TO, 5) and sample[OBS_STATE].dtype == torch.float32
    assert sample[ACTION].shape == (T, 3) and sample[ACTION].dtype == torch.float32
    assert sample[ACTION_IS_PAD].shape == (T,) and sample[ACTION_IS_PAD].dtype == torch.bool
    assert sample[TASK_INDEX].shape == () and sample[TASK_INDEX].dtype == torch.int64
    assert isinstance(sample[TASK_INSTRUCTION], str)


def test_every_window_matches_the_written_arrays(task_folder):
    folder, written = task_folder
    dataset = dataset_of(folder)
    names = sorted(written)  # task index = sorted order of names
    episodes = [(names.index(task), w.instruction, s, a) for task in names for w in [written[task]]
                for s, a in zip(w.states, w.actions)]  # files are read in sorted file-name order
    i = 0
    for task_index, instruction, state, action in episodes:
        starts = range(len(action) - T + TA)  # t in [0, L - T + Ta - 1]
        for t in starts:
            sample = dataset[i]
            obs, actions, is_pad = expected_window(state, action, t)
            np.testing.assert_array_equal(sample[OBS_STATE].numpy(), obs)
            np.testing.assert_array_equal(sample[ACTION].numpy(), actions)
            np.testing.assert_array_equal(sample[ACTION_IS_PAD].numpy(), is_pad)
            assert sample[TASK_INDEX].item() == task_index and sample[TASK_INSTRUCTION] == instruction
            i += 1
    assert i == len(dataset) == sum(L - T + TA for task in written for L in map(len, written[task].actions))


def test_first_window_repeats_the_first_observation(task_folder):
    folder, written = task_folder
    sample = dataset_of(folder)[0]  # button-press-v3, demo_0, t = 0
    state, action = written["button-press-v3"].states[0], written["button-press-v3"].actions[0]
    np.testing.assert_array_equal(sample[OBS_STATE].numpy(), np.stack([state[0]] * TO))
    np.testing.assert_array_equal(sample[ACTION].numpy(), action[:T])
    assert not sample[ACTION_IS_PAD].any()


def test_last_window_repeats_the_last_action(task_folder):
    folder, written = task_folder
    dataset = dataset_of(folder)
    state, action = written["button-press-v3"].states[0], written["button-press-v3"].actions[0]  # L = 20
    last_t = 20 - T + TA - 1
    sample = dataset[last_t]  # the last window of the first episode
    real = 20 - last_t
    assert sample[ACTION_IS_PAD].tolist() == [False] * real + [True] * (TA - 1)
    np.testing.assert_array_equal(sample[ACTION].numpy()[:real], action[last_t:])
    np.testing.assert_array_equal(sample[ACTION].numpy()[real:], np.stack([action[-1]] * (TA - 1)))
    np.testing.assert_array_equal(sample[OBS_STATE].numpy(), state[last_t - TO + 1: last_t + 1])
    assert dataset[last_t + 1][TASK_INSTRUCTION] == "do button-press-v3"  # next episode starts at t = 0
    np.testing.assert_array_equal(dataset[last_t + 1][OBS_STATE][0].numpy(), written["button-press-v3"].states[1][0])


def test_task_indices_follow_task_names(task_folder):
    folder, _ = task_folder
    assert [(i, name) for i, name, _ in dataset_of(folder).tasks] == [(0, "button-press-v3"), (1, "push-v3"),
                                                                      (2, "reach-v3")]
    order = ["push-v3", "unused-v3", "reach-v3", "button-press-v3"]
    dataset = dataset_of(folder, task_names=order)
    assert dataset.tasks == [(0, "push-v3", "do push-v3"), (2, "reach-v3", "do reach-v3"),
                             (3, "button-press-v3", "do button-press-v3")]
    for i in range(0, len(dataset), 7):
        sample = dataset[i]
        assert order[sample[TASK_INDEX].item()] == sample[TASK_INSTRUCTION].removeprefix("do ")
        assert dataset.task_of_sample[i] == sample[TASK_INDEX].item()


def test_unknown_task_raises_naming_file(task_folder):
    folder, _ = task_folder
    with pytest.raises(DatasetError, match="push-v3") as error:
        dataset_of(folder, task_names=["reach-v3", "button-press-v3"])
    assert str(folder / "push-v3.hdf5") in str(error.value)


def test_duplicate_task_raises(tmp_path):
    write_task_file(tmp_path / "a.hdf5", "same-v3", [20])
    write_task_file(tmp_path / "b.hdf5", "same-v3", [20])
    with pytest.raises(DatasetError, match="same-v3.*a.hdf5"):
        dataset_of(tmp_path)


def test_short_episodes_are_reported_not_dropped_silently(tmp_path, caplog):
    write_task_file(tmp_path / "a.hdf5", "a", [T - TA, 20])  # shorter than T - Ta + 1: no window
    with caplog.at_level(logging.WARNING):
        dataset = dataset_of(tmp_path)
    assert "a.hdf5:demo_0" in caplog.text and len(dataset) == 20 - T + TA
    write_task_file(tmp_path / "a.hdf5", "a", [T - TA])
    with pytest.raises(DatasetError, match="no episode is long enough"):
        dataset_of(tmp_path)


def test_list_of_files_and_single_file(task_folder):
    folder, _ = task_folder
    both = dataset_of([str(folder / "push-v3.hdf5"), str(folder / "reach-v3.hdf5")])
    assert [name for _, name, _ in both.tasks] == ["push-v3", "reach-v3"]
    assert len(dataset_of(folder / "push-v3.hdf5")) == 40 - T + TA


def test_images_are_upright_and_match_the_state_steps(image_folder):
    folder, written = image_folder
    dataset = dataset_of(folder, cameras=["corner", "gripper"])
    assert dataset.image_shapes == {"corner": (3, 8, 10), "gripper": (3, 8, 10)}
    for i in [0, 1, 5, len(dataset) - 1]:  # close-v3 (stored upside down) first, open-v3 (upright) last
        sample = dataset[i]
        task = sample[TASK_INSTRUCTION].removeprefix("do ")
        w = written[task]
        demo, t = next((d, t) for d, state in enumerate(w.states) for t in range(len(state))
                       if np.array_equal(state[t], sample[OBS_STATE][-1].numpy()))
        steps = np.maximum(np.arange(t - TO + 1, t + 1), 0)
        for camera in ("corner", "gripper"):
            frames = sample[rgb_key(camera)]
            assert frames.dtype == torch.uint8 and frames.shape == (TO, 3, 8, 10)
            np.testing.assert_array_equal(frames.numpy(), w.images[camera][demo][steps].transpose(0, 3, 1, 2))


def test_only_tasks_keeps_their_windows_indices_and_frames(image_folder):
    """open-v3 alone: its windows, its index among task_names, and frames read from its own file (the second one
    on disk), not from the file that now comes first."""
    folder, written = image_folder
    dataset = dataset_of(folder, cameras=["corner"], task_names=["close-v3", "open-v3"], only_tasks=["open-v3"])
    assert dataset.tasks == [(1, "open-v3", "do open-v3")]
    assert len(dataset) == sum(L - T + TA for L in (22, 30))
    sample = dataset[0]  # open-v3, demo_0, t = 0
    assert sample[TASK_INDEX].item() == 1
    np.testing.assert_array_equal(sample[rgb_key("corner")].numpy(),
                                  written["open-v3"].images["corner"][0][[0] * TO].transpose(0, 3, 1, 2))
    with pytest.raises(DatasetError, match=r"no demonstrations of tasks \['push-v3'\]"):
        dataset_of(folder, only_tasks=["push-v3"])


def test_tasks_of_the_table_without_demonstrations_are_named_and_logged(image_folder, caplog):
    """A task whose expert never solved it has no file: the dataset names it (the run records it) and warns."""
    folder, _ = image_folder
    with caplog.at_level(logging.WARNING, logger="datasets.sequence_dataset"):
        dataset = dataset_of(folder, task_names=["close-v3", "push-v3", "open-v3", "reach-v3"])
    assert dataset.tasks_without_demonstrations == ["push-v3", "reach-v3"]
    assert [name for _, name, _ in dataset.tasks] == ["close-v3", "open-v3"]
    assert "no demonstrations of tasks ['push-v3', 'reach-v3']" in caplog.text
    assert dataset_of(folder, task_names=["close-v3", "open-v3"]).tasks_without_demonstrations == []
    # leaving tasks out on purpose (a fine-tune of one task) is not a gap in the data
    chosen = dataset_of(folder, task_names=["close-v3", "push-v3", "open-v3"], only_tasks=["open-v3"])
    assert chosen.tasks_without_demonstrations == []


def test_image_cache_gives_the_same_samples_and_logs_its_size(image_folder, caplog):
    folder, _ = image_folder
    on_demand = dataset_of(folder, cameras=["corner", "gripper"])
    with caplog.at_level(logging.INFO, logger="datasets.sequence_dataset"):
        cached = dataset_of(folder, cameras=["corner", "gripper"], cache_images=True)
    assert "caching images" in caplog.text and f"{2 * 78 * 3 * 8 * 10 / 2**20:.1f} MiB" in caplog.text
    for i in range(len(on_demand)):
        a, b = on_demand[i], cached[i]
        for key in (rgb_key("corner"), rgb_key("gripper"), OBS_STATE, ACTION):
            assert torch.equal(a[key], b[key])


def test_dataloader_workers_give_the_same_batches(image_folder):
    folder, _ = image_folder
    dataset = dataset_of(folder, cameras=["corner", "gripper"])
    dataset[3]  # open handles in this process before the workers fork
    pickle.loads(pickle.dumps(dataset))  # picklable with open handles (spawned workers pickle it)
    batches = [list(DataLoader(dataset, batch_size=5, shuffle=False, num_workers=workers))
               for workers in (0, 2)]
    assert len(batches[0]) == len(batches[1]) == -(-len(dataset) // 5)
    for serial, parallel in zip(*batches):
        assert serial.keys() == parallel.keys()
        for key in serial:
            if isinstance(serial[key], torch.Tensor):
                assert torch.equal(serial[key], parallel[key]), key
            else:
                assert serial[key] == parallel[key]


def test_task_balanced_weights_give_every_task_the_same_total(tmp_path):
    write_task_file(tmp_path / "big.hdf5", "big", [104] * 10)
    write_task_file(tmp_path / "small.hdf5", "small", [104])
    dataset = dataset_of(tmp_path, horizon=5, n_action_steps=1)  # L - T + Ta = 100 windows per episode
    assert np.bincount(dataset.task_of_sample).tolist() == [1000, 100]  # "big" has 10x the windows of "small"
    weights = task_balanced_weights(dataset)
    totals = np.bincount(dataset.task_of_sample, weights=weights.numpy())
    np.testing.assert_allclose(totals, [0.5, 0.5])
    assert sample_weights(dataset, task_balanced=False) is None


def test_config_is_registered_and_validated():
    assert "dataset_schema.yaml" in ConfigStore.instance().repo["dataset"]
    with pytest.raises(ValueError, match="n_action_steps"):
        DatasetConfig(path="x", horizon=4, n_action_steps=8)
    with pytest.raises(ValueError, match="n_obs_steps"):
        DatasetConfig(path="x", n_obs_steps=0)
