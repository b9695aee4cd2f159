"""Checkpoints: safetensors weights plus JSON; no pickled classes.

    save_policy(directory, policy, weights=ema_state, metadata={"suite": "metaworld_mt10", "step": 1000})
    policy, info = load_policy(directory)          # rebuilt from config.json, weights loaded, eval mode

A checkpoint directory holds
    config.json         format version, registry name, resolved policy config, spec (dimensions,
                        cameras, task table) and free metadata (suite, training step, ...)
    model.safetensors   the weights to act with (the EMA weights when training kept an EMA),
                        normaliser and instruction embeddings included
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from common.atomic import atomic_directory
from policies.base import MultitaskPolicy
from policies.registry import config_class, make_policy
from policies.spec import PolicySpec

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, corrupt or of an unknown format."""


def weights_bytes(state: dict[str, torch.Tensor]) -> bytes:
    """The content of ``model.safetensors`` for a state dict."""
    return save({k: v.detach().cpu().contiguous() for k, v in state.items()})


def weights_sha256(state: dict[str, torch.Tensor]) -> str:
    """sha256 of the ``model.safetensors`` these weights make: the hash of the file once saved."""
    return hashlib.sha256(weights_bytes(state)).hexdigest()


def write_policy_files(directory: Path, policy: MultitaskPolicy, weights: dict[str, torch.Tensor],
                       metadata: dict[str, Any], extras: dict[str, Any] | None = None) -> None:
    """``model.safetensors``, ``config.json`` and `extras` (file name -> JSON content, e.g. the policy's
    `checkpoint_extras()`) into an existing folder (plain writes: the caller's folder is the temporary one
    of `common.atomic.atomic_directory`)."""
    (directory / WEIGHTS_FILE).write_bytes(weights_bytes(weights))
    record = {"format_version": FORMAT_VERSION, "policy": policy.config.name, "config": asdict(policy.config),
              "spec": policy.spec.to_dict(), "metadata": metadata}
    (directory / CONFIG_FILE).write_text(json.dumps(record, indent=1) + "\n")
    for name, content in (extras or {}).items():
        (directory / name).write_text(json.dumps(content, indent=1) + "\n")


def save_policy(directory: str | Path, policy: MultitaskPolicy, weights: dict[str, torch.Tensor] | None = None,
                metadata: dict[str, Any] | None = None, extras: dict[str, Any] | None = None) -> Path:
    """Write `policy` (or `weights` in its layout) and `extras` to `directory`, atomically; returns it."""
    with atomic_directory(directory) as tmp:
        write_policy_files(tmp, policy, policy.state_dict() if weights is None else weights, metadata or {}, extras)
    return Path(directory)


def read_checkpoint_record(directory: str | Path) -> dict[str, Any]:
    """config.json of a checkpoint, checked for its format version."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{directory} is not a checkpoint: {CONFIG_FILE} is missing")
    try:
        record = json.loads(path.read_text())
    except ValueError as error:
        raise CheckpointError(f"{path} is not valid JSON: {error}") from error
    if record.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has format version {record.get('format_version')!r}; this code reads "
                              f"version {FORMAT_VERSION}")
    return record


def build_from_record(record: dict[str, Any]) -> MultitaskPolicy:
    """An untrained policy with the config and spec of a checkpoint record."""
    schema = OmegaConf.structured(config_class(record["policy"]))
    config = OmegaConf.to_object(OmegaConf.merge(schema, record["config"]))
    return make_policy(config, PolicySpec.from_dict(record["spec"]))


def load_policy(directory: str | Path, device: str | torch.device = "cpu") -> tuple[MultitaskPolicy, dict[str, Any]]:
    """The policy saved in `directory`, in eval mode on `device`, and its config.json record."""
    record = read_checkpoint_record(directory)
    policy = build_from_record(record)
    weights_path = Path(directory) / WEIGHTS_FILE
    try:
        weights = load_file(str(weights_path))
    except (OSError, SafetensorError) as error:
        raise CheckpointError(f"cannot read {weights_path}: {error}") from error
    try:
        policy.load_state_dict(weights)
    except RuntimeError as error:
        raise CheckpointError(f"{weights_path} does not match its {CONFIG_FILE}: {error}") from error
    return policy.to(device).eval(), record
