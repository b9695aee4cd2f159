"""The normaliser maps data into range, inverts exactly, and its statistics live in the state dict."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from policies.normalizer import Normalizer


def _stats(x: np.ndarray) -> dict[str, np.ndarray]:
    return {"min": x.min(0), "max": x.max(0), "mean": x.mean(0), "std": x.std(0)}


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    actions = rng.uniform([-1, 0, 5], [1, 10, 5], size=(500, 3)).astype(np.float32)  # last dim constant
    state = rng.normal(3.0, 2.0, size=(500, 4)).astype(np.float32)
    return {"action": actions, "obs.state": state}


def test_min_max_maps_to_minus_one_one_and_inverts(data):
    norm = Normalizer({"action": ("min_max", 3), "obs.state": ("mean_std", 4)})
    norm.fit({key: _stats(value) for key, value in data.items()})
    actions = torch.from_numpy(data["action"])
    y = norm.normalize("action", actions)
    torch.testing.assert_close(y[:, :2].min(0).values, torch.tensor([-1.0, -1.0]))
    torch.testing.assert_close(y[:, :2].max(0).values, torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(y[:, 2], torch.zeros(500))  # a constant dim is centred, not blown up
    torch.testing.assert_close(norm.unnormalize("action", y), actions)
    z = norm.normalize("obs.state", torch.from_numpy(data["obs.state"]))
    torch.testing.assert_close(z.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(0, unbiased=False), torch.ones(4), atol=1e-5, rtol=0)


def test_a_dimension_constant_in_the_data_is_unnormalised_to_its_constant(data):
    norm = Normalizer({"action": ("min_max", 3)})
    norm.fit({"action": _stats(data["action"])})
    predicted = torch.tensor([[0.5, -0.5, 0.3], [1.0, 1.0, -0.8]])  # any prediction for the constant dim
    actions = norm.unnormalize("action", predicted)
    torch.testing.assert_close(actions[:, 2], torch.full((2,), 5.0))  # the demonstrations' value, exactly
    torch.testing.assert_close(actions[:, :2], torch.tensor([[0.5, 2.5], [1.0, 10.0]]), atol=0.1, rtol=0)  # sample min/max


def test_older_state_dicts_without_constant_masks_still_load(data):
    fitted = Normalizer({"action": ("min_max", 3)})
    fitted.fit({"action": _stats(data["action"])})
    older = {k: v for k, v in fitted.state_dict().items() if not k.endswith("constant")}
    restored = Normalizer({"action": ("min_max", 3)})
    restored.load_state_dict(older)
    torch.testing.assert_close(restored.unnormalize("action", torch.ones(1, 3))[0, 2], torch.tensor(6.0))


def test_older_state_dicts_with_one_map_per_key_load_as_the_one_group(data):
    fitted = Normalizer({"action": ("min_max", 3)})
    fitted.fit({"action": _stats(data["action"])})
    older = {k: v[0] for k, v in fitted.state_dict().items()}  # (D,) buffers, as written before groups
    assert all(v.shape == (3,) for v in older.values())
    restored = Normalizer({"action": ("min_max", 3)})
    restored.load_state_dict(older)
    x = torch.from_numpy(data["action"][:10])
    torch.testing.assert_close(restored.normalize("action", x), fitted.normalize("action", x), rtol=0, atol=0)


def fitted_normalizer(actions: np.ndarray) -> Normalizer:
    norm = Normalizer({"action": ("min_max", 3)})
    norm.fit({"action": _stats(actions)})
    return norm


def test_each_group_has_its_own_map_and_fewer_dimensions_are_padded_with_zero(data):
    norm = Normalizer({"action": ("min_max", 3)}, groups=2)
    norm.fit({"action": _stats(data["action"])}, group=0)
    narrow = data["action"][:, :2] * 10 + 4  # another suite: two dimensions of its own, another range
    norm.fit({"action": _stats(narrow)}, group=1)
    rows = torch.cat([torch.from_numpy(data["action"][:5]), torch.from_numpy(np.pad(narrow[:5], ((0, 0), (0, 1))))])
    groups = torch.tensor([0] * 5 + [1] * 5)
    y = norm.normalize("action", rows[:, None], groups)  # (B, 1, D): rows broadcast over the middle axis
    torch.testing.assert_close(y[:5, 0], fitted_normalizer(data["action"]).normalize("action", rows[:5]))
    assert bool((y[5:, 0, :2].abs() <= 1).all()) and not y[5:, 0, 2].any()  # padding stays 0
    back = norm.unnormalize("action", torch.full((10, 1, 3), 0.7), groups)
    assert not back[5:, 0, 2].any()  # a dimension the group does not have is returned as 0
    torch.testing.assert_close(norm.unnormalize("action", y, groups), rows[:, None])
    with pytest.raises(ValueError, match="group"):
        norm.normalize("action", rows)  # several groups: each row must say its own



def test_statistics_travel_in_the_state_dict(data):
    fitted = Normalizer({"action": ("min_max", 3)})
    fitted.fit({"action": _stats(data["action"])})
    restored = Normalizer({"action": ("min_max", 3)})
    restored.load_state_dict(fitted.state_dict())
    x = torch.from_numpy(data["action"][:10])
    torch.testing.assert_close(restored.normalize("action", x), fitted.normalize("action", x))
    assert not torch.equal(restored.normalize("action", x), x)


def test_bad_input_is_refused(data):
    with pytest.raises(ValueError, match="mode"):
        Normalizer({"action": ("zscore", 3)})
    norm = Normalizer({"action": ("min_max", 4)})
    with pytest.raises(ValueError, match="shape"):
        norm.fit({"action": _stats(data["action"])})
    with pytest.raises(KeyError, match="action"):
        norm.fit({"obs.state": _stats(data["obs.state"])})
    with pytest.raises(KeyError, match="known keys"):
        norm.normalize("obs.state", torch.zeros(4))
