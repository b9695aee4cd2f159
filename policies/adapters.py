"""Per-task adapters on the denoiser: low-rank updates (LoRA) and, optionally, one output head per task.

    wrap_with_task_adapters(denoiser, AdapterConfig(rank=8), num_tasks=50)
    layers = task_selected_layers(denoiser)         # found once: walking the modules per call costs
    with adapter_tasks(layers, task_index):         # (B,) int64; -1: no adapter, the shared weights alone
        out = denoiser(...)

Every `nn.Linear` whose name ends with one of `targets` becomes a `TaskLoRALinear`:

    y_b = W x_b + b + (alpha / r) * B[t_b] A[t_b] x_b        t_b: the task of sample b

so one batch mixes tasks and each sample gets its own task's update, in one batched product per layer,
while training and while acting. B starts at zero, so adapters start as the shared model.

Written here rather than with `peft`: peft's LoRA selects adapters per sample only at inference
(`LoraModel` refuses `adapter_names` in training mode), and its mixed-batch forward loops over the adapters
present (up to 50 small products per layer and diffusion step). Merging per-task fine-tunes uses peft
(`peft.utils.merge_utils`). The weights stay plain tensors of the policy: safetensors + JSON, no pickle.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

NO_TASK = -1  # the task index of a sample that gets no adapter (an instruction outside the task table)


@dataclass
class AdapterConfig:
    rank: int = 0  # r of the per-task low-rank updates; 0: no adapters
    alpha: float = 16.0  # the updates are scaled by alpha / r
    targets: list[str] = field(default_factory=lambda: ["film.1", "linear1", "linear2"])
    # ^ name endings of the denoiser's Linear layers that get adapters (UNet: FiLM; transformer: feed-forward)
    task_heads: bool = False  # a separate output layer per task (multi-head)

    def __post_init__(self) -> None:
        if self.rank < 0:
            raise ValueError(f"adapters.rank must be >= 0, got {self.rank}")

    @property
    def enabled(self) -> bool:
        return self.rank > 0 or self.task_heads


class _TaskSelected(nn.Module):
    """A layer whose output depends on each sample's task: set by `adapter_tasks`, (B,) int64."""

    tasks: torch.Tensor | None = None


class TaskLoRALinear(_TaskSelected):
    """`base` (a Linear) plus a rank-r update per task: x (B, ..., in) -> (B, ..., out)."""

    def __init__(self, base: nn.Linear, num_tasks: int, rank: int, alpha: float):
        super().__init__()
        self.base, self.scale = base, alpha / rank
        self.lora_A = nn.Parameter(torch.empty(num_tasks, rank, base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(num_tasks, base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_A.view(-1, base.in_features), a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        if self.tasks is None:
            return y
        tasks = self.tasks.clamp_min(0)
        flat = x.reshape(len(x), -1, x.shape[-1])  # (B, L, in)
        low = torch.einsum("bli,bri->blr", flat, self.lora_A[tasks])
        update = torch.einsum("blr,bor->blo", low, self.lora_B[tasks]) * self.scale
        update = update * (self.tasks >= 0).to(update.dtype)[:, None, None]
        return y + update.reshape(y.shape)


class TaskHead(_TaskSelected):
    """One output layer per task in place of `base`, a Linear or a kernel-1 Conv1d, each starting as a copy.
    A sample without a task uses `base`."""

    def __init__(self, base: nn.Linear | nn.Conv1d, num_tasks: int):
        super().__init__()
        self.base = base
        weight = base.weight.detach().reshape(base.weight.shape[0], -1)  # (out, in)
        self.weight = nn.Parameter(weight.expand(num_tasks, *weight.shape).clone())
        self.bias = nn.Parameter(base.bias.detach().expand(num_tasks, -1).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tasks is None:
            return self.base(x)
        tasks = self.tasks.clamp_min(0)
        if isinstance(self.base, nn.Conv1d):  # (B, in, T) -> (B, out, T)
            y = torch.einsum("bit,boi->bot", x, self.weight[tasks]) + self.bias[tasks][:, :, None]
        else:  # (B, ..., in) -> (B, ..., out)
            flat = x.reshape(len(x), -1, x.shape[-1])
            y = (torch.einsum("bli,boi->blo", flat, self.weight[tasks]) + self.bias[tasks][:, None]).reshape(
                *x.shape[:-1], -1)
        known = (self.tasks >= 0).reshape(-1, *([1] * (y.dim() - 1)))
        return torch.where(known, y, self.base(x))


def wrap_with_task_adapters(module: nn.Module, config: AdapterConfig, num_tasks: int, head: str = "head") -> int:
    """Put adapters into `module` in place; `head` names its output layer (the last layer of it, for a
    Sequential). Returns the number of layers that got adapters."""
    wrapped = 0
    if config.rank > 0:
        for name, parent, child_name, child in _children(module):
            if isinstance(child, nn.Linear) and any(name.endswith(t) for t in config.targets):
                setattr(parent, child_name, TaskLoRALinear(child, num_tasks, config.rank, config.alpha))
                wrapped += 1
        if not wrapped:
            raise ValueError(f"no Linear layer of the denoiser ends with {config.targets}")
    if config.task_heads:
        parent, child_name = module, head
        output = getattr(module, head)
        if isinstance(output, nn.Sequential):
            parent, child_name, output = output, str(len(output) - 1), output[-1]
        setattr(parent, child_name, TaskHead(output, num_tasks))
        wrapped += 1
    return wrapped


def _children(module: nn.Module) -> list[tuple[str, nn.Module, str, nn.Module]]:
    """(full name, parent, attribute name, child) of every submodule, collected before any is replaced."""
    return [(f"{prefix}.{name}" if prefix else name, parent, name, child)
            for prefix, parent in module.named_modules() for name, child in parent.named_children()]


def task_selected_layers(module: nn.Module) -> list[nn.Module]:
    """The adapter layers (LoRA and task heads) inside `module`; empty when it has none."""
    return [m for m in module.modules() if isinstance(m, _TaskSelected)]


@contextmanager
def adapter_tasks(layers: list[nn.Module], tasks: torch.Tensor | None) -> Iterator[None]:
    """Within the block, every adapter layer of `layers` (`task_selected_layers`) serves task `tasks[b]` to
    sample b (NO_TASK: none)."""
    for layer in layers:
        layer.tasks = tasks
    try:
        yield
    finally:
        for layer in layers:
            layer.tasks = None


def adapter_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The per-task parameters (LoRA matrices and task heads) inside `module`."""
    return [p for m in task_selected_layers(module) for name, p in m.named_parameters(recurse=False)]
