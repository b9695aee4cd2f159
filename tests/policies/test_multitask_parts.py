"""Mixtures of experts and per-task adapters: routing, balance, caching, isolation of tasks, checkpoints."""

from __future__ import annotations

import json

import pytest
import torch

from common.schema import TASK_EMBEDDING, TASK_INDEX
from policies.adapters import adapter_parameters
from policies.checkpoint import load_policy, save_policy
from policies.config import ConditioningConfig
from policies.moe import MixtureOfExperts, MoEConfig, Router, balance_loss, moe_layers
from policies.registry import make_policy
from tests.policies.conftest import TEXT_DIM, tiny_batch, tiny_config, tiny_spec


def with_text_table(policy):
    policy.conditioning.set_text_table(torch.randn(len(policy.spec.tasks), TEXT_DIM,
                                                   generator=torch.Generator().manual_seed(1)))
    return policy


def test_top_k_gates_pick_k_experts_per_sample_and_sum_to_one():
    torch.manual_seed(0)
    router = Router(MoEConfig(num_experts=5, top_k=2, router_dim=8), {"task": 6, "step": 4})
    gates, probs, chosen = router({"task": torch.randn(32, 6), "step": torch.randn(32, 4)})
    assert gates.shape == probs.shape == (32, 5) and chosen.shape == (32, 2)
    assert (gates > 0).sum(-1).eq(2).all()
    torch.testing.assert_close(gates.sum(-1), torch.ones(32))
    assert torch.equal(gates.gt(0), torch.zeros_like(gates, dtype=torch.bool).scatter(-1, chosen, True))


def test_the_balance_loss_is_one_for_uniform_routing_and_grows_to_e_when_routing_collapses():
    experts = 4
    uniform_probs = torch.full((8, experts), 1 / experts)
    round_robin = torch.arange(8).remainder(experts)[:, None]
    assert balance_loss(uniform_probs, round_robin).item() == pytest.approx(1.0)
    collapsed_probs = torch.zeros(8, experts).index_fill_(1, torch.tensor([0]), 1.0)
    assert balance_loss(collapsed_probs, torch.zeros(8, 1, dtype=torch.long)).item() == pytest.approx(experts)
    half = balance_loss(torch.tensor([[0.5, 0.5, 0, 0]]).expand(8, -1), torch.arange(8).remainder(2)[:, None])
    assert 1.0 < half.item() < experts


def test_a_mixture_computes_each_sample_with_its_own_experts_only():
    torch.manual_seed(0)
    layer = MixtureOfExperts(lambda: torch.nn.Linear(3, 3), MoEConfig(num_experts=3, top_k=1, router_input="task"),
                             {"task": 4})
    route = {"task": torch.randn(6, 4)}
    x = torch.randn(6, 3)
    layer.eval()
    gates = layer.gates(route)
    expected = torch.stack([layer.experts[int(g.argmax())](row) for row, g in zip(x, gates)])
    torch.testing.assert_close(layer(x, route), expected)


@pytest.mark.parametrize("denoiser", ["unet", "transformer"])
def test_cached_routing_acts_exactly_as_routing_computed_afresh(denoiser):
    """At inference the gates of each (task, step) are computed once; the actions must not change. (8 rows, the
    acting micro-batch: CPU kernels may round a ragged tail of rows differently from the rows before it.)"""
    torch.manual_seed(0)
    spec = tiny_spec()
    policy = with_text_table(make_policy(tiny_config("diffusion", f"{denoiser}+moe"), spec)).eval()
    batch = tiny_batch(spec, batch_size=8)
    noise = torch.randn(8, *policy.noise_shape, generator=torch.Generator().manual_seed(2))
    first = policy.predict_action_chunk(batch, noise=noise)  # fills the cache
    assert all(layer._cache for _, layer in moe_layers(policy))
    cached = policy.predict_action_chunk(batch, noise=noise)
    # the same instructions given as embeddings: no cache key, so every gate is computed afresh
    fresh = policy.predict_action_chunk(batch | {TASK_EMBEDDING: policy.conditioning.text_table[batch[TASK_INDEX]]},
                                        noise=noise)
    assert torch.equal(first, cached) and torch.equal(cached, fresh)


def test_an_adapter_trained_on_task_a_leaves_task_b_bit_identical():
    torch.manual_seed(0)
    spec = tiny_spec()
    policy = with_text_table(make_policy(tiny_config("diffusion", "unet+adapters"), spec))
    batch = tiny_batch(spec, batch_size=6)  # tasks 0, 1, 2, 0, 1, 2
    noise = torch.randn(6, *policy.noise_shape, generator=torch.Generator().manual_seed(2))
    policy.eval()
    before = policy.predict_action_chunk(batch, noise=noise)
    for p in policy.parameters():
        p.requires_grad_(False)
    adapters = adapter_parameters(policy.denoiser)
    for p in adapters:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(adapters, lr=1e-2, weight_decay=0.0)
    task_a = {k: v[[0, 3]] for k, v in batch.items()}  # only task 0's samples
    policy.train()
    for _ in range(20):
        loss = policy.compute_loss(task_a)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    policy.eval()
    after = policy.predict_action_chunk(batch, noise=noise)
    others = batch[TASK_INDEX] != 0
    assert torch.equal(after[others], before[others])  # tasks 1 and 2: not a bit moved
    assert not torch.allclose(after[~others], before[~others])  # task 0 learned


def test_adapters_and_experts_save_as_safetensors_and_json_and_load_to_the_same_actions(tmp_path):
    torch.manual_seed(0)
    spec = tiny_spec()
    config = tiny_config("diffusion", "unet+adapters")
    config.unet.moe = MoEConfig(num_experts=3, top_k=1, router_dim=8)
    policy = with_text_table(make_policy(config, spec)).eval()
    with torch.no_grad():
        for p in adapter_parameters(policy.denoiser):
            p.add_(0.1 * torch.randn_like(p))  # trained adapters: not the zero update they start as
    save_policy(tmp_path / "ckpt", policy, extras=policy.checkpoint_extras())
    files = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert files == [".complete", "config.json", "expert_usage.json", "model.safetensors"]
    for path in (tmp_path / "ckpt").iterdir():
        assert b"\x80\x04" not in path.read_bytes()[:2] and not path.read_bytes().startswith(b"PK")  # no pickle
    loaded, _ = load_policy(tmp_path / "ckpt")
    batch = tiny_batch(spec, batch_size=4)
    noise = torch.randn(4, *policy.noise_shape, generator=torch.Generator().manual_seed(3))
    assert torch.equal(policy.predict_action_chunk(batch, noise=noise), loaded.predict_action_chunk(batch, noise=noise))
    usage = json.loads((tmp_path / "ckpt" / "expert_usage.json").read_text())
    assert usage["tasks"] == [t.name for t in spec.tasks]
    for shares in usage["layers"].values():  # per layer: (tasks, E), each task's shares summing to 1
        assert len(shares) == 3 and all(sum(row) == pytest.approx(1.0) for row in shares)


def test_a_text_only_policy_with_adapters_runs_new_instructions_on_the_shared_weights():
    torch.manual_seed(0)
    spec = tiny_spec()
    config = tiny_config("diffusion", "unet+adapters", conditioning=ConditioningConfig(task_index=False, dim=8))
    policy = with_text_table(make_policy(config, spec)).eval()
    with torch.no_grad():
        for p in adapter_parameters(policy.denoiser):
            p.add_(0.1 * torch.randn_like(p))
    batch = tiny_batch(spec, batch_size=3)
    noise = torch.randn(3, *policy.noise_shape, generator=torch.Generator().manual_seed(3))
    new_instructions = batch | {TASK_EMBEDDING: torch.randn(3, TEXT_DIM)}
    with_adapters = policy.predict_action_chunk(new_instructions, noise=noise)
    config_without = tiny_config("diffusion", "unet", conditioning=ConditioningConfig(task_index=False, dim=8))
    shared = make_policy(config_without, spec).eval()
    shared.load_state_dict({k.replace(".base.", "."): v for k, v in policy.state_dict().items()
                            if "lora_" not in k and not (k.endswith("head.1.weight") or k.endswith("head.1.bias"))},
                           strict=True)
    assert torch.equal(with_adapters, shared.predict_action_chunk(new_instructions, noise=noise))
