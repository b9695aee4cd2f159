"""A trained policy as the evaluation engine sees it: numpy batches in, numpy action chunks out.

    policy, record = load_policy("outputs/train/mt10_state/checkpoints/last")
    actor = PolicyActor(policy, suite_tasks, device="auto", batch_size=8)
    actions = actor.predict_action_chunk(batch)     # common.schema.ChunkPolicy: (B, T, Da) float32

The suite's task indices are mapped to the checkpoint's by task name. A task the policy was not
trained on can only be run by a text-conditioned policy without task-index embedding; its
instruction is then embedded with the policy's text encoder (this needs the encoder, once).

A policy trained across suites runs the tasks of one of them at a time: the actor pads the suite's state
with zeros, gives zero frames for the cameras the suite lacks, says the suite (``suite.index``) and returns
only the suite's own action dimensions.

Reproducible by construction: the engine batches whichever episodes are waiting, so a row must not
depend on its batch. Each row's noise is drawn from (episode.seed, episode.step) alone, and the policy
always runs on micro-batches of exactly `batch_size` rows (the last one padded): CPU kernels pick
their blocking, and so their rounding, by the batch size (measured: up to 1e-5 apart for batch 1, 8
and 23 on the same rows), and a rounding difference in one action can change a whole episode. Within a
batch whose size is a multiple of the kernels' row tile (8 is; a ragged 6 is not), a row computes the same
wherever it sits (tested). The torch thread count matters too; the evaluation workflow fixes it
(rollout.policy_threads).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np
import torch

from common.schema import (EPISODE_SEED, EPISODE_STEP, OBS_RGB_PREFIX, OBS_STATE, SUITE_INDEX, TASK_EMBEDDING,
                           TASK_INDEX, Task, rgb_key)
from policies.base import MultitaskPolicy
from policies.spec import PolicySpec, SuiteShape
from policies.text_encoder import embed_instructions, make_text_encoder

log = logging.getLogger(__name__)


def select_device(name: str = "auto") -> torch.device:
    """``auto``: cuda when available, else cpu; or an explicit torch device string."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} asked for, but torch sees no CUDA device")
    return device


def episode_noise(seeds: np.ndarray, steps: np.ndarray, shape: tuple[int, ...]) -> torch.Tensor:
    """(B, *shape) float32 standard normal noise on the CPU; row b depends on (seeds[b], steps[b]) alone."""
    rows = []
    for seed, step in zip(np.asarray(seeds).tolist(), np.asarray(steps).tolist()):
        generator = torch.Generator().manual_seed((int(seed) * 1_000_003 + int(step)) % 2**63)
        rows.append(torch.randn(shape, generator=generator))
    return torch.stack(rows)


def _micro_batch(tensor: torch.Tensor, start: int, size: int) -> torch.Tensor:
    """Rows start..start+size-1 of `tensor`, padded with copies of the first when there are fewer."""
    rows = tensor[start:start + size]
    if len(rows) < size:
        rows = torch.cat([rows, rows[:1].expand(size - len(rows), *rows.shape[1:])])
    return rows


def across_suites(spec: PolicySpec, tasks: list[Task]) -> tuple[int | None, SuiteShape]:
    """(suite.index of `tasks` in a policy across suites, or None; the dimensions and cameras they use).

    Raises:
        ValueError: tasks of several suites, or of a suite the policy was not trained on.
    """
    suites = sorted({t.suite for t in tasks})
    if not spec.suites:
        return None, spec.shape_of(suites[0] if suites else "")
    if len(suites) != 1:
        raise ValueError(f"a policy across suites runs the tasks of one suite at a time, got tasks of {suites}")
    index = spec.suite_index(suites[0])
    return index, spec.suites[index]


class PolicyActor:
    """Wraps a `MultitaskPolicy` into `common.schema.ChunkPolicy` for the tasks of one suite."""

    def __init__(self, policy: MultitaskPolicy, tasks: list[Task], device: str = "auto", batch_size: int = 8):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.requested_device = device
        self.device = select_device(device)
        self.policy = policy.to(self.device).eval()
        self.n_obs_steps, self.n_action_steps = policy.n_obs_steps, policy.n_action_steps
        self.batch_size = batch_size
        self.suite_index, self.shape = across_suites(policy.spec, tasks)
        known = {t.name: t.index for t in policy.spec.tasks}
        unknown = [t.name for t in tasks if t.name not in known]
        self.task_embeddings: torch.Tensor | None = None
        self.notes: list[str] = []  # what differs from acting on the training tasks, for the results
        if not unknown:
            self.index_map = torch.tensor([known[t.name] for t in tasks], dtype=torch.long)
        elif policy.config.conditioning.task_index:
            raise ValueError(f"the policy was trained on tasks {sorted(known)} and cannot run {unknown}: it embeds "
                             "task indices; only a policy conditioned on text alone can take new instructions")
        else:
            encoder = make_text_encoder(policy.config.conditioning.text_encoder)
            self.index_map = torch.zeros(len(tasks), dtype=torch.long)  # unused without task-index embedding
            self.task_embeddings = embed_instructions(encoder, [t.instruction for t in tasks])
            note = policy.new_instruction_note()
            if note:
                self.notes.append(f"{note} ({len(unknown)} new: {', '.join(unknown)})")
                log.warning("%s", self.notes[-1])

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (a Ray actor's copy) with the weights on the CPU, so a process without this one's GPU can
        load it; unpickling puts them on the device `device` names there ("auto": that process's GPU if it
        has one)."""
        state = self.__dict__.copy()
        if self.device.type != "cpu":
            state["policy"] = copy.deepcopy(self.policy).cpu()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.device = select_device(self.requested_device)
        self.policy = self.policy.to(self.device)

    def predict_action_chunk(self, batch: dict[str, Any]) -> np.ndarray:
        """obs.state (B, To, Ds), obs.rgb.<camera> (B, To, 3, H, W) uint8, task.index (B,),
        episode.seed and episode.step (B,) -> actions (B, T, Da) float32."""
        suite_index = torch.as_tensor(np.asarray(batch[TASK_INDEX]), dtype=torch.long)
        inputs = {OBS_STATE: torch.as_tensor(np.asarray(batch[OBS_STATE]), dtype=torch.float32),
                  TASK_INDEX: self.index_map[suite_index]}
        inputs |= {k: torch.as_tensor(np.asarray(v)) for k, v in batch.items() if k.startswith(OBS_RGB_PREFIX)}
        if self.suite_index is not None:
            self._pad_to_policy(inputs)
        if self.task_embeddings is not None:
            inputs[TASK_EMBEDDING] = self.task_embeddings[suite_index]
        self.policy.check_batch(inputs)
        noise = episode_noise(batch[EPISODE_SEED], batch[EPISODE_STEP], self.policy.noise_shape)
        rows, chunks = len(noise), []
        for start in range(0, rows, self.batch_size):
            part = {k: _micro_batch(v, start, self.batch_size).to(self.device, non_blocking=True)
                    for k, v in inputs.items()}
            actions = self.policy.predict_action_chunk(part, noise=_micro_batch(noise, start, self.batch_size))
            chunks.append(actions[:rows - start, :, :self.shape.action_dim].float().cpu())
        return torch.cat(chunks).numpy()

    def _pad_to_policy(self, inputs: dict[str, torch.Tensor]) -> None:
        """The suite's inputs as the policy across suites takes them: state zero-padded, zero frames for the
        cameras of other suites, and each row's suite."""
        spec, state = self.policy.spec, inputs[OBS_STATE]
        if state.shape[-1] != self.shape.state_dim:
            raise ValueError(f"obs.state has {state.shape[-1]} dimensions; suite {self.shape.name} of the policy "
                             f"has {self.shape.state_dim}")
        inputs[OBS_STATE] = torch.cat([state, state.new_zeros(*state.shape[:-1], spec.state_dim - state.shape[-1])],
                                      dim=-1)
        rows, steps = state.shape[:2]
        for camera in spec.cameras:
            if camera not in self.shape.cameras:
                inputs[rgb_key(camera)] = torch.zeros(rows, steps, *spec.image_shapes[camera], dtype=torch.uint8)
        inputs[SUITE_INDEX] = torch.full((rows,), self.suite_index, dtype=torch.long)
