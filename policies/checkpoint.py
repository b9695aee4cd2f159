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

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from policies.base import MultitaskPolicy
from policies.registry import config_class, make_policy
from policies.spec import PolicySpec

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, corrupt or of an unknown format."""


def save_policy(directory: str | Path, policy: MultitaskPolicy, weights: dict[str, torch.Tensor] | None = None,
                metadata: dict[str, Any] | None = None) -> Path:
    """Write `policy` (or `weights` in its layout) to `directory`, atomically; returns the directory."""
    directory = Path(directory)
    partial = directory.with_name(f".{directory.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    state = weights if weights is not None else policy.state_dict()
    save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(partial / WEIGHTS_FILE))
    record = {"format_version": FORMAT_VERSION, "policy": policy.config.name, "config": asdict(policy.config),
              "spec": policy.spec.to_dict(), "metadata": metadata or {}}
    (partial / CONFIG_FILE).write_text(json.dumps(record, indent=1) + "\n")
    replace_directory(partial, directory)
    return directory


def replace_directory(source: Path, target: Path) -> None:
    """Move `source` to `target`, replacing an older `target` only once `source` is complete."""
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(source, target)
        shutil.rmtree(old)
    else:
        os.replace(source, target)


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
