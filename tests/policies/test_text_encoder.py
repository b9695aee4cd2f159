"""The default text encoder works offline and tells instructions apart."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from policies.text_encoder import embed_instructions, make_text_encoder

ROOT = Path(__file__).resolve().parents[2]

# A process that cannot reach any host: every socket connection fails, and the hub's cache is empty.
WITHOUT_NETWORK = """
import json, socket, sys
sys.path.insert(0, {root!r})

def refuse(*args, **kwargs):
    raise OSError("network refused by the test")

socket.socket.connect = socket.socket.connect_ex = socket.create_connection = refuse
from policies.text_encoder import embed_instructions, make_text_encoder
table = embed_instructions(make_text_encoder("minilm"), ["push the puck to the goal", "open the drawer"])
print(json.dumps({{"shape": list(table.shape), "cosine": float(table[0] @ table[1])}}))
"""


@pytest.fixture(scope="module")
def minilm():
    return make_text_encoder("minilm")


def test_minilm_loads_in_a_fresh_process_that_cannot_reach_any_host(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HOME": str(tmp_path / "hf"),
           "HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0"}  # nothing cached, and not told to stay offline
    result = subprocess.run([sys.executable, "-c", WITHOUT_NETWORK.format(root=str(ROOT))], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    embedded = json.loads(result.stdout.strip().splitlines()[-1])
    assert embedded["shape"] == [2, 384] and embedded["cosine"] < 0.9


def test_minilm_separates_instructions(minilm):
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
