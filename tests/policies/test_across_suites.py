"""One policy across suites: padded state, actions and cameras are never read nor graded, each suite keeps its
own statistics, and the policy refuses suites it was not trained on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from common.schema import ACTION, ACTION_IS_PAD, EPISODE_SEED, EPISODE_STEP, OBS_STATE, SUITE_INDEX, TASK_INDEX, \
    Task, rgb_key
from policies.acting import PolicyActor, episode_noise
from policies.checkpoint import load_policy, save_policy
from policies.registry import make_policy
from policies.spec import PolicySpec, SuiteShape
from tests.policies.conftest import VARIANTS, tiny_config

CAMERA = (3, 16, 16)
STATE = {"arm": 7, "kitchen": 4}  # "kitchen" has fewer state and action dimensions, and a camera
ACTIONS = {"arm": 3, "kitchen": 2}


def suite_spec(suite: str) -> PolicySpec:
    tasks = [Task(suite, f"{suite}-task-{i}", i, f"{suite} task {i}") for i in range(2)]
    return PolicySpec(STATE[suite], ACTIONS[suite], tasks, image_shapes={"wrist": CAMERA} if suite == "kitchen" else {})


def joint_spec() -> PolicySpec:
    return PolicySpec.across_suites([suite_spec("arm"), suite_spec("kitchen")])


def joint_policy(name: str = "diffusion", denoiser: str | None = "unet", seed: int = 0):
    torch.manual_seed(seed)
    policy = make_policy(tiny_config(name, denoiser), joint_spec())
    rng = np.random.default_rng(seed)
    for group, suite in enumerate(("arm", "kitchen")):  # each suite's own, different statistics
        stats = {}
        for key, dim in ((OBS_STATE, STATE[suite]), (ACTION, ACTIONS[suite])):
            low = rng.uniform(-3, 0, dim).astype(np.float32)
            high = low + rng.uniform(1, 4, dim).astype(np.float32)
            stats[key] = {"min": low, "max": high, "mean": (low + high) / 2, "std": (high - low) / 4}
        policy.normalizer.fit(stats, group=group)
    return policy


def joint_batch(seed: int = 0, rows: int = 6) -> dict[str, torch.Tensor]:
    """Rows alternate between the suites; everything a suite lacks holds zeros, as JointDataset pads."""
    generator = torch.Generator().manual_seed(seed)
    suite = torch.arange(rows) % 2
    state = torch.randn(rows, 2, 7, generator=generator)
    state[suite == 1, :, 4:] = 0
    action = torch.rand(rows, 8, 3, generator=generator) * 2 - 1
    action[suite == 1, :, 2:] = 0
    frames = torch.randint(0, 256, (rows, 2, *CAMERA), dtype=torch.uint8, generator=generator)
    frames[suite == 0] = 0
    return {OBS_STATE: state, ACTION: action, ACTION_IS_PAD: torch.zeros(rows, 8, dtype=torch.bool),
            rgb_key("wrist"): frames, TASK_INDEX: suite * 2 + torch.arange(rows) % 3 % 2, SUITE_INDEX: suite}


def fill_padding(batch: dict[str, torch.Tensor], seed: int = 1) -> dict[str, torch.Tensor]:
    """The same batch with garbage wherever a row's suite has nothing."""
    generator, batch = torch.Generator().manual_seed(seed), {k: v.clone() for k, v in batch.items()}
    kitchen, arm = batch[SUITE_INDEX] == 1, batch[SUITE_INDEX] == 0
    batch[OBS_STATE][kitchen, :, 4:] = torch.randn(int(kitchen.sum()), 2, 3, generator=generator) * 100
    batch[ACTION][kitchen, :, 2:] = torch.randn(int(kitchen.sum()), 8, 1, generator=generator) * 100
    batch[rgb_key("wrist")][arm] = torch.randint(0, 256, (int(arm.sum()), 2, *CAMERA), dtype=torch.uint8,
                                                 generator=generator)
    return batch


def test_the_joint_spec_renumbers_tasks_pads_to_the_largest_suite_and_round_trips():
    spec = joint_spec()
    assert (spec.state_dim, spec.action_dim, spec.cameras) == (7, 3, ["wrist"])
    assert [(t.suite, t.index) for t in spec.tasks] == [("arm", 0), ("arm", 1), ("kitchen", 2), ("kitchen", 3)]
    assert spec.suites == [SuiteShape("arm", 7, 3, []), SuiteShape("kitchen", 4, 2, ["wrist"])]
    assert PolicySpec.from_dict(spec.to_dict()) == spec
    assert "suites" not in suite_spec("arm").to_dict()  # one-suite records stay as older checkpoints hold them


def test_a_joint_spec_refuses_a_camera_two_suites_render_at_different_sizes_and_shared_task_names():
    other = PolicySpec(3, 2, [Task("other", "x", 0, "x")], image_shapes={"wrist": (3, 32, 32)})
    with pytest.raises(ValueError, match="camera 'wrist'"):
        PolicySpec.across_suites([suite_spec("kitchen"), other])
    twin = PolicySpec(3, 2, [Task("twin", "arm-task-0", 0, "x")])
    with pytest.raises(ValueError, match="more than one suite"):
        PolicySpec.across_suites([suite_spec("arm"), twin])


@pytest.mark.parametrize("name, denoiser", VARIANTS, ids=[f"{n}-{d}" if d else n for n, d in VARIANTS])
def test_padding_adds_nothing_to_the_loss_and_gradients_are_finite(name, denoiser):
    policy = joint_policy(name, denoiser).train()
    batch = joint_batch()
    torch.manual_seed(3)
    clean = policy.compute_loss(batch)
    torch.manual_seed(3)
    padded = policy.compute_loss(fill_padding(batch))
    assert torch.isfinite(clean["loss"])
    torch.testing.assert_close(padded["loss_per_sample"], clean["loss_per_sample"], rtol=0, atol=0)
    clean["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in policy.parameters() if p.grad is not None)


@pytest.mark.parametrize("name, denoiser, head", [("transformer", None, "head"), ("diffusion", "unet", "denoiser")])
def test_a_padded_action_dimension_is_not_graded(name, denoiser, head):
    """The kitchen rows' error on action dimension 2 (not theirs) does not count: a prediction off by 5 there
    leaves their loss as it is; the arm rows' dimension 2 does count."""
    policy = joint_policy(name, denoiser).train()
    batch = joint_batch()
    for suite, counts in ((1, False), (0, True)):
        rows = batch[SUITE_INDEX] == suite
        torch.manual_seed(3)
        base = policy.compute_loss(batch)["loss_per_sample"]

        def off_by_five(module, inputs, output, rows=rows):
            output = output.clone()
            output[rows, :, 2] += 5.0
            return output

        hook = getattr(policy, head).register_forward_hook(off_by_five)
        torch.manual_seed(3)
        moved = policy.compute_loss(batch)["loss_per_sample"]
        hook.remove()
        assert bool((moved[rows] > base[rows] + 1).all()) is counts
        torch.testing.assert_close(moved[~rows], base[~rows], rtol=0, atol=0)


@pytest.mark.parametrize("name, denoiser", [("diffusion", "unet"), ("diffusion", "transformer"),
                                            ("transformer", None)])
def test_padded_state_and_frames_of_a_missing_camera_leave_actions_unchanged(name, denoiser):
    policy = joint_policy(name, denoiser).eval()
    batch = joint_batch()
    noise = torch.randn(6, 8, 3, generator=torch.Generator().manual_seed(5))
    actions = policy.predict_action_chunk(batch, noise=noise.clone())
    torch.testing.assert_close(policy.predict_action_chunk(fill_padding(batch), noise=noise.clone()), actions,
                               rtol=0, atol=0)
    # ... while the state a suite has, and the frames of a camera it has, do change them
    changed = {k: v.clone() for k, v in batch.items()}
    changed[OBS_STATE][1, :, :4] += 1.0
    changed[rgb_key("wrist")][3] = 255 - changed[rgb_key("wrist")][3]
    moved = policy.predict_action_chunk(changed, noise=noise.clone())
    assert not torch.equal(moved[1], actions[1]) and not torch.equal(moved[3], actions[3])


def test_each_suite_is_unnormalised_with_its_own_statistics_and_its_padding_is_zero():
    policy = joint_policy("transformer", None).eval()
    normalized = torch.zeros(2, 8, 3)  # the middle of every range
    actions = policy.normalizer.unnormalize(ACTION, normalized, torch.tensor([0, 1]))
    arm, kitchen = actions[0, 0], actions[1, 0]
    assert not torch.allclose(arm[:2], kitchen[:2])
    assert kitchen[2] == 0.0  # not a kitchen dimension: pinned, whatever was predicted
    with pytest.raises(ValueError, match="suite.index"):
        policy.predict_action_chunk({k: v for k, v in joint_batch().items() if k != SUITE_INDEX})


def test_the_actor_runs_one_suite_of_the_policy_in_its_own_dimensions_and_refuses_others():
    policy = joint_policy()
    kitchen_tasks = [Task("kitchen", f"kitchen-task-{i}", i, f"kitchen task {i}") for i in range(2)]
    actor = PolicyActor(policy, kitchen_tasks, device="cpu", batch_size=2)
    rng = np.random.default_rng(0)
    batch = {OBS_STATE: rng.normal(size=(2, 2, 4)).astype(np.float32),
             rgb_key("wrist"): rng.integers(0, 256, (2, 2, *CAMERA), dtype=np.uint8),
             TASK_INDEX: np.array([1, 0]), EPISODE_SEED: np.array([4, 5]), EPISODE_STEP: np.array([0, 8])}
    chunk = actor.predict_action_chunk(batch)
    assert chunk.shape == (2, 8, 2)  # the kitchen's own 2 action dimensions
    # the same as the policy on the padded batch, rows mapped to the joint table (kitchen tasks are 2 and 3)
    padded = {OBS_STATE: torch.cat([torch.from_numpy(batch[OBS_STATE]), torch.zeros(2, 2, 3)], -1),
              rgb_key("wrist"): torch.from_numpy(batch[rgb_key("wrist")]), TASK_INDEX: torch.tensor([3, 2]),
              SUITE_INDEX: torch.tensor([1, 1])}
    expected = policy.predict_action_chunk(padded, noise=episode_noise(batch[EPISODE_SEED], batch[EPISODE_STEP],
                                                                       (8, 3)))
    np.testing.assert_array_equal(chunk, expected[:, :, :2].numpy())
    with pytest.raises(ValueError, match=r"trained on suites \['arm', 'kitchen'\] and cannot run garden"):
        PolicyActor(policy, [Task("garden", "water", 0, "water the plants")], device="cpu")
    with pytest.raises(ValueError, match="one suite at a time"):
        PolicyActor(policy, [Task("arm", "arm-task-0", 0, "a"), Task("kitchen", "kitchen-task-0", 1, "k")],
                    device="cpu")


def test_a_policy_across_suites_saves_and_loads_with_its_suites_and_statistics(tmp_path):
    policy = joint_policy().eval()
    save_policy(tmp_path / "ckpt", policy)
    loaded, record = load_policy(tmp_path / "ckpt")
    assert loaded.spec == policy.spec and [s["name"] for s in record["spec"]["suites"]] == ["arm", "kitchen"]
    noise = torch.randn(6, 8, 3, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(loaded.predict_action_chunk(joint_batch(), noise=noise.clone()),
                               policy.predict_action_chunk(joint_batch(), noise=noise.clone()), rtol=0, atol=0)


def test_a_batch_without_any_row_of_a_camera_still_gives_its_encoder_a_zero_gradient():
    """DistributedDataParallel needs a gradient for every parameter from every process's shard."""
    policy = joint_policy().train()
    arm_only = {k: v[::2] for k, v in joint_batch().items()}  # rows 0, 2, 4: the arm suite, no camera
    policy.compute_loss(arm_only)["loss"].backward()
    grads = [p.grad for p in policy.obs_encoder.image_encoders["wrist"].parameters()]
    assert all(g is not None and not g.any() for g in grads)
