"""A trained policy as the evaluation engine sees it: numpy batches in, numpy action chunks out.

    policy, record = load_policy("outputs/train/mt10_state/checkpoints/last")
    actor = PolicyActor(policy, suite_tasks, device="auto", seed=0)
    actions = actor.predict_action_chunk(batch)     # schema.ChunkPolicy: (B, T, Da) float32

The suite's task indices are mapped to the checkpoint's by task name. A task the policy was not
trained on can only be run by a text-conditioned policy without task-index embedding; its
instruction is then embedded with the policy's text encoder (this needs the encoder, once).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from policies.base import MultitaskPolicy
from policies.text_encoder import embed_instructions, make_text_encoder
from schema import OBS_RGB_PREFIX, OBS_STATE, TASK_EMBEDDING, TASK_INDEX, Task


def select_device(name: str = "auto") -> torch.device:
    """``auto``: cuda when available, else cpu; or an explicit torch device string."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} asked for, but torch sees no CUDA device")
    return device


class PolicyActor:
    """Wraps a `MultitaskPolicy` into `schema.ChunkPolicy` for the tasks of one suite."""

    def __init__(self, policy: MultitaskPolicy, tasks: list[Task], device: str = "auto", seed: int = 0):
        self.device = select_device(device)
        self.policy = policy.to(self.device).eval()
        self.n_obs_steps, self.n_action_steps = policy.n_obs_steps, policy.n_action_steps
        self.generator = torch.Generator(self.device).manual_seed(seed)
        known = {t.name: t.index for t in policy.spec.tasks}
        unknown = [t.name for t in tasks if t.name not in known]
        self.task_embeddings: torch.Tensor | None = None
        if not unknown:
            self.index_map = torch.tensor([known[t.name] for t in tasks], dtype=torch.long)
        elif policy.config.conditioning.task_index:
            raise ValueError(f"the policy was trained on tasks {sorted(known)} and cannot run {unknown}: it embeds "
                             "task indices; only a policy conditioned on text alone can take new instructions")
        else:
            encoder = make_text_encoder(policy.config.conditioning.text_encoder)
            self.index_map = torch.zeros(len(tasks), dtype=torch.long)  # unused without task-index embedding
            self.task_embeddings = embed_instructions(encoder, [t.instruction for t in tasks])

    def predict_action_chunk(self, batch: dict[str, Any]) -> np.ndarray:
        """obs.state (B, To, Ds), obs.rgb.<camera> (B, To, 3, H, W) uint8, task.index (B,) -> (B, T, Da)."""
        suite_index = torch.as_tensor(np.asarray(batch[TASK_INDEX]), dtype=torch.long)
        inputs = {OBS_STATE: torch.as_tensor(np.asarray(batch[OBS_STATE]), dtype=torch.float32),
                  TASK_INDEX: self.index_map[suite_index]}
        inputs |= {k: torch.as_tensor(np.asarray(v)) for k, v in batch.items() if k.startswith(OBS_RGB_PREFIX)}
        if self.task_embeddings is not None:
            inputs[TASK_EMBEDDING] = self.task_embeddings[suite_index]
        inputs = {k: v.to(self.device, non_blocking=True) for k, v in inputs.items()}
        self.policy.check_batch(inputs)
        actions = self.policy.predict_action_chunk(inputs, generator=self.generator)
        return actions.float().cpu().numpy()
