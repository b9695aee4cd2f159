"""Task conditioning: a learned embedding of the task index and/or a frozen embedding of the instruction.

The frozen text embeddings of the training tasks are a buffer (N, E) of the module, so they are
saved with the weights and evaluating known tasks needs no text encoder. A batch may carry its
own ``task.embedding`` (B, E), for instructions outside the table.
"""

from __future__ import annotations

import torch
from torch import nn

from common.schema import TASK_EMBEDDING, TASK_INDEX
from policies.config import ConditioningConfig
from policies.moe import ROUTE_INSTRUCTION, ROUTE_KEY, ROUTE_TASK


class TaskConditioning(nn.Module):
    """batch with ``task.index`` (B,) [and ``task.embedding`` (B, E)] -> (B, output_dim)."""

    def __init__(self, config: ConditioningConfig, num_tasks: int, text_dim: int):
        super().__init__()
        self.config = config
        self.output_dim = 0
        if config.task_index:
            self.task_embedding = nn.Embedding(num_tasks, config.dim)
            self.output_dim += config.dim
        if config.text:
            self.register_buffer("text_table", torch.zeros(num_tasks, text_dim))
            self.text_projection = nn.Sequential(nn.Linear(text_dim, config.dim), nn.SiLU())
            self.output_dim += config.dim

    @torch.no_grad()
    def set_text_table(self, embeddings: torch.Tensor) -> None:
        """embeddings (N, E): the frozen instruction embedding of each training task, by index."""
        if not self.config.text:
            return
        if embeddings.shape != self.text_table.shape:
            raise ValueError(f"text embeddings have shape {tuple(embeddings.shape)}, expected "
                             f"{tuple(self.text_table.shape)} (tasks, embedding size)")
        self.text_table.copy_(embeddings)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = []
        if self.config.task_index:
            parts.append(self.task_embedding(batch[TASK_INDEX]))
        if self.config.text:
            parts.append(self.text_projection(self._text(batch)))
        return torch.cat(parts, dim=-1)

    def _text(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, E): the batch's own instruction embeddings, else the table's rows of its tasks."""
        text = batch[TASK_EMBEDDING] if TASK_EMBEDDING in batch else self.text_table[batch[TASK_INDEX]]
        return text.to(self.text_table.dtype)

    @property
    def route_dims(self) -> dict[str, int]:
        """Sizes of the routing-context parts this conditioning provides (see `routing_context`)."""
        dims = {ROUTE_TASK: self.config.dim} if self.config.task_index else {}
        return dims | ({ROUTE_INSTRUCTION: self.text_table.shape[1]} if self.config.text else {})

    def routing_context(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """What a mixture-of-experts router may read: the task's learned embedding (B, D), the instruction's
        frozen embedding (B, E), and the task index as cache key when both are functions of the task alone."""
        route = {}
        if self.config.task_index:
            route[ROUTE_TASK] = self.task_embedding(batch[TASK_INDEX])
        if self.config.text:
            route[ROUTE_INSTRUCTION] = self._text(batch)
        if TASK_EMBEDDING not in batch:
            route[ROUTE_KEY] = batch[TASK_INDEX]
        return route
