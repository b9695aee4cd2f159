"""Model merging of per-task fine-tunes (peft's merge_utils), and the fine-tunes train.py makes for it."""

from __future__ import annotations

import pytest
import torch

from policies.checkpoint import CheckpointError, load_policy, save_policy
from policies.registry import make_policy
from tests.policies.conftest import tiny_batch, tiny_config, tiny_spec
from tests.test_trainer import RandomWindows, tiny_policy, trainer_config
from training.config import Trainable
from training.trainer import Trainer
from workflows.merge import merge_checkpoints, merge_task_vectors


def _weights(seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {"w": torch.randn(6, 5, generator=generator), "b": torch.randn(5, generator=generator),
            "mask": torch.tensor([True, False])}


@pytest.mark.parametrize("method", ["task_arithmetic", "ties", "dare_linear", "dare_ties"])
def test_merging_two_identical_fine_tunes_gives_that_fine_tune(method):
    base, tuned = _weights(0), _weights(1)
    tuned["mask"] = base["mask"].clone()
    merged = merge_task_vectors(base, [tuned, tuned], method, weights=[0.5, 0.5] if "linear" in method or
                                method == "task_arithmetic" else [1.0, 1.0], density=1.0)
    for key in base:
        torch.testing.assert_close(merged[key], tuned[key])


def test_ties_keeps_the_agreeing_majority_and_drops_the_small_entries():
    base = {"w": torch.zeros(4)}
    a, b = {"w": torch.tensor([1.0, -2.0, 0.1, 3.0])}, {"w": torch.tensor([1.0, 2.0, 0.0, -1.0])}
    merged = merge_task_vectors(base, [a, b], "ties", weights=[1.0, 1.0], density=0.75)["w"]
    # trimmed to the 3 largest entries each: a keeps (1, -2, _, 3), b keeps (1, 2, _, -1); signs elected by
    # total mass (+, a tie that goes to +, none, +); the entries that agree are averaged, the others dropped
    torch.testing.assert_close(merged, torch.tensor([1.0, 2.0, 0.0, 3.0]))


def test_a_merged_checkpoint_loads_like_any_other_and_foreign_fine_tunes_are_refused(tmp_path):
    spec = tiny_spec()
    torch.manual_seed(0)
    base = make_policy(tiny_config("diffusion", "unet"), spec)
    save_policy(tmp_path / "base", base)
    for i in range(2):
        tuned = make_policy(tiny_config("diffusion", "unet"), spec)
        tuned.load_state_dict({k: v + 0.01 * (i + 1) if v.is_floating_point() else v
                               for k, v in base.state_dict().items()})
        save_policy(tmp_path / f"ft{i}", tuned)
    out = merge_checkpoints(tmp_path / "base", [tmp_path / "ft0", tmp_path / "ft1"], tmp_path / "merged",
                            "task_arithmetic", density=1.0)
    merged, record = load_policy(out)
    assert record["metadata"]["merged"]["method"] == "task_arithmetic"
    torch.testing.assert_close(merged.state_dict()["conditioning.task_embedding.weight"],
                               base.state_dict()["conditioning.task_embedding.weight"] + 0.015)
    other = make_policy(tiny_config("diffusion", "transformer"), spec)
    save_policy(tmp_path / "other", other)
    with pytest.raises(CheckpointError, match="not a fine-tune"):
        merge_checkpoints(tmp_path / "base", [tmp_path / "other"], tmp_path / "bad", "ties", density=0.5)


def test_an_adapter_only_fine_tune_changes_nothing_but_the_adapters(tmp_path):
    policy = tiny_policy()
    config = tiny_config("diffusion", "unet+adapters")
    policy = make_policy(config, tiny_spec())
    policy.conditioning.set_text_table(torch.randn(3, 384))
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    trainer = Trainer(trainer_config(num_steps=4, trainable=Trainable.adapters), policy, RandomWindows(), tmp_path,
                      progress=False)
    trainer.fit()
    changed = {k for k, v in trainer.policy.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all("lora_" in k or k.startswith("denoiser.head.1.") and ".base." not in k for k in changed)


def test_adapter_only_training_needs_adapters(tmp_path):
    with pytest.raises(ValueError, match="no adapters"):
        Trainer(trainer_config(trainable=Trainable.adapters), tiny_policy(), RandomWindows(), tmp_path, progress=False)


def test_tiny_batch_helper_still_matches_the_spec():
    assert tiny_batch(tiny_spec())["obs.state"].shape[-1] == tiny_spec().state_dim
