"""PolicyActor: the numpy interface of the evaluation engine, task tables matched by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from common.schema import EPISODE_SEED, EPISODE_STEP, OBS_STATE, TASK_INDEX, TASK_INSTRUCTION, ChunkPolicy, Task
from policies.acting import PolicyActor, select_device
from policies.config import ConditioningConfig
from policies.registry import make_policy
from tests.policies.conftest import STATE_DIM, TEXT_DIM, tiny_config, tiny_spec


def numpy_batch(task_indices: list[int], instructions: list[str]) -> dict:
    rng = np.random.default_rng(0)
    rows = len(task_indices)
    return {OBS_STATE: rng.normal(size=(rows, 2, STATE_DIM)).astype(np.float32),
            TASK_INDEX: np.array(task_indices), TASK_INSTRUCTION: instructions,
            EPISODE_SEED: np.arange(100, 100 + rows), EPISODE_STEP: np.zeros(rows, dtype=np.int64)}


def rows(batch: dict, index: list[int]) -> dict:
    return {k: [v[i] for i in index] if isinstance(v, list) else v[index] for k, v in batch.items()}


@pytest.mark.parametrize("denoiser", ["unet", "transformer"])
def test_a_row_acts_the_same_whatever_batch_it_comes_in(denoiser):
    """The engine batches whichever episodes wait: 1, 2 or 11 rows, in any order, must not change a row."""
    policy = make_policy(tiny_config("diffusion", denoiser), tiny_spec())
    policy.conditioning.set_text_table(torch.randn(3, TEXT_DIM))
    actor = PolicyActor(policy, tiny_spec().tasks, device="cpu", batch_size=4)
    batch = numpy_batch([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1], ["x"] * 11)
    batch[EPISODE_STEP] = np.arange(11) * 8
    together = actor.predict_action_chunk(batch)
    alone = np.concatenate([actor.predict_action_chunk(rows(batch, [i])) for i in range(11)])
    reversed_order = actor.predict_action_chunk(rows(batch, list(range(10, -1, -1))))[::-1]
    np.testing.assert_array_equal(together, alone)
    np.testing.assert_array_equal(together, reversed_order)


def test_a_pickled_copy_acts_bit_for_bit_as_the_original():
    """What a Ray actor receives (ray.put pickles the actor): the same weights, the same actions."""
    import pickle

    policy = make_policy(tiny_config("diffusion"), tiny_spec())
    policy.conditioning.set_text_table(torch.randn(3, TEXT_DIM))
    actor = PolicyActor(policy, tiny_spec().tasks, device="cpu", batch_size=4)
    copy = pickle.loads(pickle.dumps(actor))
    assert copy.policy is not actor.policy and copy.device == torch.device("cpu")
    batch = numpy_batch([0, 1, 2], ["x"] * 3)
    np.testing.assert_array_equal(copy.predict_action_chunk(batch), actor.predict_action_chunk(batch))


def test_noise_comes_from_the_episode_seed_and_step():
    policy = make_policy(tiny_config("diffusion", "unet"), tiny_spec())
    policy.conditioning.set_text_table(torch.randn(3, TEXT_DIM))
    actor = PolicyActor(policy, tiny_spec().tasks, device="cpu")
    batch = numpy_batch([0, 0], ["x", "x"])
    batch[OBS_STATE][1] = batch[OBS_STATE][0]  # the same observation and task in both rows
    batch[EPISODE_SEED][:] = 7
    same = actor.predict_action_chunk(batch)
    np.testing.assert_array_equal(same[0], same[1])  # same seed and step: same noise, same actions
    batch[EPISODE_STEP][1] = 8
    later = actor.predict_action_chunk(batch)
    np.testing.assert_array_equal(later[0], same[0])
    assert not np.allclose(later[1], later[0])  # another step of the episode: other noise


def test_actor_maps_suite_indices_to_the_checkpoint_table_by_name():
    spec = tiny_spec()
    policy = make_policy(tiny_config("transformer"), spec)
    policy.conditioning.set_text_table(torch.randn(3, TEXT_DIM))
    # a suite listing the same tasks in another order, and only two of them
    suite_tasks = [Task("other", "task-2", 0, "do task number 2"), Task("other", "task-0", 1, "do task number 0")]
    actor = PolicyActor(policy, suite_tasks, device="cpu")
    assert isinstance(actor, ChunkPolicy)
    batch = numpy_batch([0, 1], [t.instruction for t in suite_tasks])
    actions = actor.predict_action_chunk(batch)
    assert actions.shape == (2, 8, 3) and actions.dtype == np.float32
    direct = policy.predict_action_chunk({OBS_STATE: torch.from_numpy(batch[OBS_STATE]),
                                          TASK_INDEX: torch.tensor([2, 0])})
    np.testing.assert_allclose(actions, direct.numpy(), atol=1e-6)


def test_actor_refuses_unknown_tasks_for_index_conditioned_policies():
    policy = make_policy(tiny_config("transformer"), tiny_spec())
    with pytest.raises(ValueError, match="cannot run \\['pick-up-the-cup'\\]"):
        PolicyActor(policy, [Task("s", "pick-up-the-cup", 0, "pick up the cup")], device="cpu")


def test_text_only_policy_embeds_new_instructions_with_its_encoder():
    config = tiny_config("transformer", conditioning=ConditioningConfig(task_index=False, text=True, dim=8))
    policy = make_policy(config, tiny_spec())
    tasks = [Task("s", "new-task", 0, "open the drawer"), Task("s", "other-task", 1, "close the window")]
    actor = PolicyActor(policy, tasks, device="cpu")
    assert actor.task_embeddings.shape == (2, TEXT_DIM)
    batch = numpy_batch([0, 1], [t.instruction for t in tasks])
    batch[OBS_STATE][1] = batch[OBS_STATE][0]  # the same observation, two instructions
    actions = actor.predict_action_chunk(batch)
    assert not np.allclose(actions[0], actions[1])


def test_wrong_observation_shapes_are_named():
    actor = PolicyActor(make_policy(tiny_config("transformer"), tiny_spec()), tiny_spec().tasks, device="cpu")
    batch = numpy_batch([0], ["do task number 0"])
    batch[OBS_STATE] = batch[OBS_STATE][..., :5]
    with pytest.raises(ValueError, match="obs.state has shape \\(1, 2, 5\\)"):
        actor.predict_action_chunk(batch)


@pytest.mark.parametrize("cuda", [True, False])
def test_auto_picks_cuda_exactly_when_torch_sees_a_gpu(monkeypatch, cuda):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert select_device("auto") == torch.device("cuda" if cuda else "cpu")
    assert select_device("cpu") == torch.device("cpu")


def test_asking_for_cuda_without_a_gpu_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="'cuda:1' asked for, but torch sees no CUDA device"):
        select_device("cuda:1")
