"""Statistics against numpy, the cache beside the data, and its invalidation."""

from __future__ import annotations

import numpy as np

from common.schema import ACTION, OBS_STATE
from datasets import statistics
from datasets.config import DatasetConfig
from datasets.sequence_dataset import MultitaskSequenceDataset
from datasets.statistics import compute_statistics, load_or_compute_statistics, statistics_cache_path
from tests.datasets.conftest import write_task_file


def expected_statistics(written: dict) -> dict[str, dict[str, np.ndarray]]:
    state = np.concatenate([s for w in written.values() for s in w.states]).astype(np.float64)
    action = np.concatenate([a for w in written.values() for a in w.actions]).astype(np.float64)
    return {key: {"min": v.min(0), "max": v.max(0), "mean": v.mean(0), "std": v.std(0)}
            for key, v in ((OBS_STATE, state), (ACTION, action))}


def assert_statistics_equal(actual, expected):
    assert actual.keys() == expected.keys()
    for key in expected:
        assert actual[key].keys() == expected[key].keys()
        for name, value in expected[key].items():
            assert actual[key][name].dtype == np.float32 and actual[key][name].shape == value.shape
            np.testing.assert_allclose(actual[key][name], value, rtol=1e-6, atol=1e-6, err_msg=f"{key} {name}")


def make_dataset(folder) -> MultitaskSequenceDataset:
    return MultitaskSequenceDataset(DatasetConfig(path=str(folder), n_obs_steps=2, horizon=8, n_action_steps=4))


def test_statistics_match_numpy_over_all_steps(task_folder):
    folder, written = task_folder
    assert_statistics_equal(compute_statistics(make_dataset(folder)), expected_statistics(written))


def test_cache_is_written_and_reused(task_folder, monkeypatch):
    folder, written = task_folder
    first = load_or_compute_statistics(make_dataset(folder))
    cache = statistics_cache_path(make_dataset(folder))
    assert cache.exists() and cache.parent == folder and cache.name.startswith(".stats_")

    def fail(dataset):
        raise AssertionError("statistics recomputed although the cache is valid")

    monkeypatch.setattr(statistics, "compute_statistics", fail)
    second = load_or_compute_statistics(make_dataset(folder))
    assert_statistics_equal(second, first)
    assert_statistics_equal(second, expected_statistics(written))


def test_changed_file_invalidates_the_cache(task_folder):
    folder, written = task_folder
    before = load_or_compute_statistics(make_dataset(folder))
    old_cache = statistics_cache_path(make_dataset(folder))
    written["push-v3"] = write_task_file(folder / "push-v3.hdf5", "push-v3", [40], seed=99)  # same size, new data
    dataset = make_dataset(folder)
    assert statistics_cache_path(dataset) != old_cache
    after = load_or_compute_statistics(dataset)
    assert_statistics_equal(after, expected_statistics(written))
    assert not np.allclose(after[OBS_STATE]["mean"], before[OBS_STATE]["mean"])
    assert statistics_cache_path(dataset).exists()


def test_other_state_keys_get_their_own_cache(tmp_path):
    write_task_file(tmp_path / "a.hdf5", "a", [20])
    base = {"path": str(tmp_path), "horizon": 8, "n_action_steps": 4}
    one = MultitaskSequenceDataset(DatasetConfig(**base))
    two = MultitaskSequenceDataset(DatasetConfig(**base, state_keys=["state", "state"]))
    assert statistics_cache_path(one) != statistics_cache_path(two)
    assert load_or_compute_statistics(two)[OBS_STATE]["mean"].shape == (10,)


def test_a_subset_of_tasks_has_its_own_statistics_and_cache(task_folder):
    folder, written = task_folder
    every = make_dataset(folder)
    load_or_compute_statistics(every)
    subset = MultitaskSequenceDataset(DatasetConfig(path=str(folder), n_obs_steps=2, horizon=8, n_action_steps=4,
                                                    only_tasks=["push-v3"]))
    assert statistics_cache_path(subset) != statistics_cache_path(every)
    assert_statistics_equal(load_or_compute_statistics(subset), expected_statistics({"push-v3": written["push-v3"]}))


def test_corrupt_cache_is_recomputed(task_folder, caplog):
    folder, written = task_folder
    path = statistics_cache_path(make_dataset(folder))
    path.write_text("{not json")
    stats = load_or_compute_statistics(make_dataset(folder))
    assert "ignoring unreadable statistics cache" in caplog.text
    assert_statistics_equal(stats, expected_statistics(written))
    assert_statistics_equal(load_or_compute_statistics(make_dataset(folder)), stats)  # rewritten, readable
