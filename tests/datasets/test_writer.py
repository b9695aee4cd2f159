"""The demo writer's state layout: obs.state split into the suite's keys, read back in the same order."""

from __future__ import annotations

import numpy as np
import pytest

from common.schema import OBS_STATE
from datasets.reader import read_task_file
from datasets.writer import split_state, write_task_file

LIBERO_LAYOUT = (("ee_pos", 3), ("ee_ori", 3), ("gripper_states", 2))


def test_state_is_split_into_the_layout_keys_and_read_back_unchanged(tmp_path):
    rng = np.random.default_rng(0)
    episodes = [{OBS_STATE: rng.normal(size=(n, 8)).astype(np.float32), "actions": rng.normal(size=(n, 7)),
                 "rewards": np.zeros(n), "dones": np.eye(n)[-1]} for n in (5, 7)]
    path = write_task_file(tmp_path / "t.hdf5", episodes, {"task": "t", "instruction": "do t"}, LIBERO_LAYOUT)
    read = read_task_file(path, [key for key, _ in LIBERO_LAYOUT], [])
    assert read.obs_specs["ee_pos"][0] == (3,) and read.obs_specs["gripper_states"][0] == (2,)
    assert "state" not in read.obs_specs
    for written, episode in zip(episodes, read.episodes):
        np.testing.assert_array_equal(episode.state, written[OBS_STATE])


def test_a_layout_that_does_not_cover_the_state_is_refused():
    with pytest.raises(ValueError, match="covers 7"):
        split_state(np.zeros((4, 8)), (("ee_pos", 3), ("ee_ori", 4)))
    parts = split_state(np.arange(12.0).reshape(2, 6), (("state", None),))
    np.testing.assert_array_equal(parts["state"], np.arange(12.0).reshape(2, 6))
