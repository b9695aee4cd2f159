"""The default text encoder works offline and tells instructions apart."""

from __future__ import annotations

import pytest
import torch

from policies.text_encoder import embed_instructions, make_text_encoder


@pytest.fixture(scope="module")
def minilm(monkeypatch_module):
    return make_text_encoder("minilm")


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")  # any attempt to reach the hub fails at once
        yield patch


def test_minilm_loads_offline_and_separates_instructions(minilm):
    texts = ["push the puck to the goal", "press the button from the top", "push the puck to the goal"]
    table = embed_instructions(minilm, texts)
    assert table.shape == (3, minilm.dim) == (3, 384) and table.dtype == torch.float32
    torch.testing.assert_close(table.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(table[0], table[2])  # same text, same embedding
    assert float(table[0] @ table[1]) < 0.9  # different instructions point elsewhere


def test_related_instructions_are_closer_than_unrelated_ones(minilm):
    a, b, c = embed_instructions(minilm, ["open the drawer", "pull the drawer open by its handle",
                                          "turn the faucet handle to the left to open it"])
    assert float(a @ b) > float(a @ c)


def test_unknown_encoder_lists_the_known_ones():
    with pytest.raises(KeyError, match="minilm"):
        make_text_encoder("bert-large")
