"""Every registered policy (and denoiser): loss, gradients, shapes, save/load, overfitting one batch."""

from __future__ import annotations

import json

import pytest
import torch

from common.schema import ACTION, ACTION_IS_PAD, TASK_EMBEDDING, TASK_INDEX
from policies.checkpoint import CheckpointError, load_policy, save_policy
from policies.config import ConditioningConfig
from policies.moe import moe_layers
from policies.registry import make_policy
from tests.policies.conftest import ACTION_DIM, TEXT_DIM, tiny_batch, tiny_config, tiny_spec

CAMERAS = {"front": (3, 24, 24)}


def with_text_table(policy):
    policy.conditioning.set_text_table(torch.randn(len(policy.spec.tasks), TEXT_DIM))
    return policy


@pytest.mark.parametrize("cameras", [None, CAMERAS], ids=["state", "image"])
def test_loss_and_gradients_are_finite(variant, cameras):
    torch.manual_seed(0)
    spec = tiny_spec(cameras)
    policy = with_text_table(make_policy(tiny_config(*variant), spec))
    loss = policy.compute_loss(tiny_batch(spec))["loss"]
    loss.backward()
    assert loss.ndim == 0 and torch.isfinite(loss)
    grads = {n: p.grad for n, p in policy.named_parameters() if n not in unrouted_experts(policy)}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values()), \
        [n for n, g in grads.items() if g is None]  # every parameter takes part in the loss ...


def unrouted_experts(policy) -> set[str]:
    """... except the experts of a mixture that no sample of the batch was routed to (sparse routing)."""
    names = set()
    for layer_name, layer in moe_layers(policy):
        for e, used in enumerate(layer.last_gates.gt(0).any(0).tolist()):
            if not used:
                names |= {f"{layer_name}.experts.{e}.{n}" for n, _ in layer.experts[e].named_parameters()}
    return names


@pytest.mark.parametrize("cameras", [None, CAMERAS], ids=["state", "image"])
def test_action_chunk_shape(variant, cameras):
    spec = tiny_spec(cameras)
    policy = with_text_table(make_policy(tiny_config(*variant), spec)).eval()
    actions = policy.predict_action_chunk(tiny_batch(spec, batch_size=5))
    assert actions.shape == (5, 8, ACTION_DIM) and torch.isfinite(actions).all()


def test_save_then_load_gives_identical_actions(variant, tmp_path):
    spec = tiny_spec(CAMERAS)
    policy = with_text_table(make_policy(tiny_config(*variant), spec))
    policy.normalizer.fit({"obs.state": {"min": -torch.ones(7).numpy() * 2, "max": torch.ones(7).numpy()},
                           "action": {"min": -torch.ones(3).numpy(), "max": torch.ones(3).numpy() * 3}})
    policy.eval()
    save_policy(tmp_path / "ckpt", policy, metadata={"suite": "test_suite"})
    loaded, record = load_policy(tmp_path / "ckpt")
    batch = tiny_batch(spec)
    before = policy.predict_action_chunk(batch, generator=torch.Generator().manual_seed(3))
    after = loaded.predict_action_chunk(batch, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(after, before, rtol=0, atol=0)
    assert record["metadata"] == {"suite": "test_suite"} and record["spec"]["tasks"][1]["name"] == "task-1"
    # the statistics and the instruction embeddings travelled with the weights
    torch.testing.assert_close(loaded.conditioning.text_table, policy.conditioning.text_table)


def _overfit(policy, batch: dict, steps: int) -> tuple[float, float]:
    """Train on one batch; returns the first loss and the mean of the last ten."""
    optimizer = torch.optim.AdamW(policy.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        loss = policy.compute_loss(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses[0], sum(losses[-10:]) / 10


def test_one_small_batch_can_be_overfit_and_is_reproduced_when_acting(variant):
    """Trained on six chunks of random actions, the policy must give those chunks back when it acts: for
    diffusion, sampled from noise through the whole DDIM loop and the normaliser. (Predicting the clean
    chunk, which a tiny denoiser fits in a few hundred steps; epsilon prediction is checked below.)"""
    torch.manual_seed(0)
    spec = tiny_spec()
    fields = {"prediction_type": "sample"} if variant[0] == "diffusion" else {}
    policy = with_text_table(make_policy(tiny_config(*variant, **fields), spec))
    batch = tiny_batch(spec, batch_size=6)
    first, last = _overfit(policy, batch, steps=400)
    assert last < 0.25 * first, (first, last)
    policy.eval()
    actions = policy.predict_action_chunk(batch, generator=torch.Generator().manual_seed(0))
    spread = (batch[ACTION] - batch[ACTION].mean(0)).abs().mean()  # ~0.5: what guessing the mean would give
    assert (actions - batch[ACTION]).abs().mean() < 0.1 < spread


@pytest.mark.parametrize("denoiser", ["unet", "transformer"])
def test_epsilon_prediction_learns_the_noise_of_one_batch(denoiser):
    torch.manual_seed(0)
    spec = tiny_spec()
    policy = with_text_table(make_policy(tiny_config("diffusion", denoiser), spec))
    first, last = _overfit(policy, tiny_batch(spec, batch_size=6), steps=300)
    assert last < 0.25 * first, (first, last)


def test_padded_steps_are_left_out_of_the_regression_loss():
    spec = tiny_spec()
    policy = with_text_table(make_policy(tiny_config("transformer"), spec))
    batch = tiny_batch(spec)
    batch[ACTION_IS_PAD][:, 4:] = True
    changed = dict(batch, **{ACTION: batch[ACTION].clone()})
    changed[ACTION][:, 4:] += 5.0
    assert policy.compute_loss(batch)["loss"].item() == pytest.approx(policy.compute_loss(changed)["loss"].item())


def test_text_conditioning_uses_the_instruction_embedding():
    spec = tiny_spec()
    config = tiny_config("transformer", conditioning=ConditioningConfig(task_index=False, text=True, dim=8))
    policy = with_text_table(make_policy(config, spec)).eval()
    batch = tiny_batch(spec, batch_size=3)
    table_actions = policy.predict_action_chunk(batch)
    # the same embeddings given explicitly act the same; other embeddings act differently
    own = policy.conditioning.text_table[batch[TASK_INDEX]]
    explicit = policy.predict_action_chunk(batch | {TASK_EMBEDDING: own})
    other = policy.predict_action_chunk(batch | {TASK_EMBEDDING: torch.randn(3, TEXT_DIM)})
    torch.testing.assert_close(explicit, table_actions)
    assert not torch.allclose(other, table_actions)


def test_checkpoint_errors_are_clear(tmp_path):
    with pytest.raises(CheckpointError, match="config.json is missing"):
        load_policy(tmp_path)
    policy = with_text_table(make_policy(tiny_config("transformer"), tiny_spec()))
    save_policy(tmp_path / "ckpt", policy)
    (tmp_path / "ckpt" / "model.safetensors").write_bytes(b"torn")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_policy(tmp_path / "ckpt")
    record = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(record | {"format_version": 99}))
    with pytest.raises(CheckpointError, match="format version 99"):
        load_policy(tmp_path / "ckpt")


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path):
    save_policy(tmp_path / "ckpt", with_text_table(make_policy(tiny_config("transformer"), tiny_spec())))
    record = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    record["spec"]["action_dim"] = 5
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="does not match"):
        load_policy(tmp_path / "ckpt")


def test_unknown_names_list_the_known_ones():
    from policies.registry import config_class

    with pytest.raises(KeyError, match="unknown policy 'difusion'; known: diffusion, transformer"):
        config_class("difusion")
    with pytest.raises(ValueError, match="unknown denoiser"):
        tiny_config("diffusion", denoiser="wavenet")
