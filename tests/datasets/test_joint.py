"""Windows of two suites in one table: each part's windows as they are, padded, with joint task indices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from common.schema import ACTION, ACTION_IS_PAD, OBS_STATE, SUITE_INDEX, TASK_INDEX, rgb_key
from datasets.config import DatasetConfig
from datasets.joint import JointDataset
from datasets.reader import DatasetError
from datasets.sampling import suite_shared_weights, suite_shares, task_balanced_weights
from datasets.sequence_dataset import MultitaskSequenceDataset
from tests.datasets.conftest import write_task_file

WINDOW = dict(n_obs_steps=2, horizon=8, n_action_steps=4)


@pytest.fixture
def parts(tmp_path):
    """A state-only suite (state 5, action 3; three tasks in its table, two with data) and one with a camera
    (state 2, action 4; one task)."""
    (tmp_path / "arm").mkdir()
    (tmp_path / "kitchen").mkdir()
    write_task_file(tmp_path / "arm" / "reach.hdf5", "reach", [20, 12], seed=1)
    write_task_file(tmp_path / "arm" / "push.hdf5", "push", [15], seed=2)
    write_task_file(tmp_path / "kitchen" / "open.hdf5", "open", [18], state_dim=2, action_dim=4,
                    cameras=("wrist",), seed=3)
    arm = MultitaskSequenceDataset(DatasetConfig(path=str(tmp_path / "arm"), task_names=["push", "pull", "reach"],
                                                 **WINDOW))
    kitchen = MultitaskSequenceDataset(DatasetConfig(path=str(tmp_path / "kitchen"), cameras=["wrist"], **WINDOW))
    return arm, kitchen


def test_every_window_is_its_part_padded_with_joint_task_and_suite_indices(parts):
    arm, kitchen = parts
    joint = JointDataset([arm, kitchen], tasks_per_suite=[3, 1])
    assert len(joint) == len(arm) + len(kitchen)
    assert (joint.state_dim, joint.action_dim, joint.image_shapes) == (5, 4, {"wrist": kitchen.image_shapes["wrist"]})
    assert sorted({name for _, name, _ in joint.tasks}) == ["open", "push", "reach"]
    assert [i for i, name, _ in joint.tasks if name == "open"] == [3]  # past the arm suite's 3 tasks
    for index in range(len(joint)):
        sample = joint[index]
        suite, part = (0, arm[index]) if index < len(arm) else (1, kitchen[index - len(arm)])
        state_dim, action_dim = (5, 3) if suite == 0 else (2, 4)
        assert sample[OBS_STATE].shape == (2, 5) and sample[ACTION].shape == (8, 4)
        torch.testing.assert_close(sample[OBS_STATE][:, :state_dim], part[OBS_STATE], rtol=0, atol=0)
        assert not sample[OBS_STATE][:, state_dim:].any() and not sample[ACTION][:, action_dim:].any()
        torch.testing.assert_close(sample[ACTION][:, :action_dim], part[ACTION], rtol=0, atol=0)
        assert torch.equal(sample[ACTION_IS_PAD], part[ACTION_IS_PAD])
        assert int(sample[SUITE_INDEX]) == suite
        assert int(sample[TASK_INDEX]) == int(part[TASK_INDEX]) + (0 if suite == 0 else 3)
        if suite == 0:
            assert sample[rgb_key("wrist")].shape == (2, *kitchen.image_shapes["wrist"])
            assert not sample[rgb_key("wrist")].any()
        else:
            assert torch.equal(sample[rgb_key("wrist")], part[rgb_key("wrist")])
    assert np.array_equal(joint.task_of_sample, [int(joint[i][TASK_INDEX]) for i in range(len(joint))])


def test_balanced_sampling_weighs_the_tasks_of_both_suites_alike(parts):
    joint = JointDataset(list(parts), tasks_per_suite=[3, 1])
    weights = task_balanced_weights(joint).numpy()
    totals = [weights[joint.task_of_sample == task].sum() for task in (0, 2, 3)]
    np.testing.assert_allclose(totals, [1 / 3] * 3)


def test_a_suite_share_sets_that_suites_part_of_the_draws_and_keeps_the_draws_within_each_suite(parts):
    joint = JointDataset(list(parts), tasks_per_suite=[3, 1])
    arm = joint.suite_of_sample == 0
    assert suite_shared_weights(joint, False, [None, None]) is None  # uniform over windows, as without shares
    assert suite_shares(joint, None) == pytest.approx([arm.mean(), 1 - arm.mean()])

    weights = suite_shared_weights(joint, False, [None, 0.7]).numpy()
    assert weights[~arm].sum() == pytest.approx(0.7) and weights[arm].sum() == pytest.approx(0.3)
    assert np.ptp(weights[arm]) == pytest.approx(0) and np.ptp(weights[~arm]) == pytest.approx(0)  # uniform inside

    weights = suite_shared_weights(joint, True, [None, 0.25])  # task-balanced: equal per task within a suite
    totals = [float(weights[torch.from_numpy(joint.task_of_sample == task)].sum()) for task in (0, 2, 3)]
    assert totals == pytest.approx([0.375, 0.375, 0.25])
    assert suite_shares(joint, weights) == pytest.approx([0.75, 0.25])


def test_suite_shares_that_leave_nothing_to_the_other_suites_are_refused(parts):
    joint = JointDataset(list(parts), tasks_per_suite=[3, 1])
    with pytest.raises(ValueError, match="leave nothing"):
        suite_shared_weights(joint, False, [None, 1.0])
    with pytest.raises(ValueError, match="one share"):
        suite_shared_weights(joint, False, [0.5])


def test_parts_that_cut_different_windows_are_refused(parts, tmp_path):
    arm, _ = parts
    other = MultitaskSequenceDataset(DatasetConfig(path=str(tmp_path / "kitchen"), cameras=["wrist"], n_obs_steps=1,
                                                   horizon=8, n_action_steps=4))
    with pytest.raises(DatasetError, match="different"):
        JointDataset([arm, other], tasks_per_suite=[3, 1])
