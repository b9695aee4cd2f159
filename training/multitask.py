"""Multitask optimisation: how the per-task losses of a batch become one update (`trainer.multitask.method`).

    method = make_method(MultitaskConfig(method="upgrad"), num_tasks=10)
    scalars = method.backward(outputs, task_index, parameters)   # fills .grad; the optimizer steps after

The policy's `compute_loss` returns ``loss_per_sample`` (B,) besides ``loss``; a method groups it by task
into one loss per task present in the batch (task-stratified batches make each of them a mean over enough
samples, `training.sampler`) and turns them into gradients:

- ``sum``: plain gradient descent on the batch loss (the baseline; every method reduces to it for one task).
- gradient aggregators from `torchjd` (``upgrad``, ``pcgrad``, ``cagrad``, ``nash_mtl``, ``imtl_g``,
  ``aligned_mtl``, ``mgda``, ``dualproj``, ``gradvac``): the Jacobian of the task losses with respect to
  every parameter, aggregated into one update (torchjd's `jac_to_grad`). Their cost grows with the number
  of tasks in a batch: by default one forward and backward pass per task on that task's rows of the batch
  (`per_task_forward`, for policies whose losses are per sample), otherwise torchjd's `backward` over the
  whole batch's graph (one backward per task through every row, about twice as slow here);
  `bench/multitask_cost.py` measures both.
- loss weightings from `torchjd.scalarization` (``uncertainty``: Kendall et al.'s learned log-variances;
  ``dwa``: dynamic weight average; ``famo``: FAMO, which after each step re-measures the losses on the same
  batch with the same diffusion noise).

Every method reports the per-task losses; gradient methods also the share of task pairs whose gradients
conflict (negative cosine). A method's state (learned weights, histories, inner optimizers) is saved and
restored with the training state. GradNorm is not offered: no well-kept library implements it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from common.registry import Registry
from common.schema import TASK_INDEX

METHODS: Registry[Callable[["MultitaskConfig", int], "MultitaskMethod"]] = Registry("multitask method")


@dataclass
class MultitaskConfig:
    method: str = "sum"  # a registered method (training.multitask): sum, upgrad, pcgrad, cagrad, famo, ...
    tasks_per_batch: int = 0  # task-stratified batches of this many tasks, equal shares; 0: uniform draws
    per_task_forward: bool = True  # gradient methods: each task's gradient from a pass over its rows alone
    cagrad_c: float = 0.5  # CAGrad's trade-off between the average gradient and the worst task
    famo_lr: float = 0.025  # learning rate of FAMO's task-weighting logits
    dwa_temperature: float = 2.0  # temperature of dynamic weight average

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown multitask method {self.method!r}; known: {', '.join(METHODS.names())}")
        if self.tasks_per_batch < 0:
            raise ValueError(f"trainer.multitask.tasks_per_batch must be >= 0, got {self.tasks_per_batch}")


def task_losses(per_sample: torch.Tensor, tasks: torch.Tensor, num_tasks: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample losses (B,) and their tasks (B,) -> (mean loss of each task present (K,), those tasks (K,))."""
    total = torch.zeros(num_tasks, dtype=per_sample.dtype, device=per_sample.device).index_add(0, tasks, per_sample)
    count = torch.zeros(num_tasks, device=per_sample.device).index_add(0, tasks, torch.ones_like(per_sample))
    present = count.nonzero().flatten()
    return total[present] / count[present], present


def rows_of(batch: dict[str, Any], rows: torch.Tensor) -> dict[str, Any]:
    """The sub-batch of `rows` (R,): tensors and lists with one entry per row are indexed, the rest kept."""
    size = len(batch[TASK_INDEX])
    picked = rows.tolist()
    return {key: value[rows] if isinstance(value, torch.Tensor) and value.dim() > 0 and len(value) == size else
            [value[i] for i in picked] if isinstance(value, (list, tuple)) and len(value) == size else value
            for key, value in batch.items()}


def conflict_share(gramian: torch.Tensor) -> float:
    """Share of task pairs whose gradients point against each other (negative cosine), from the Gramian
    G = J J^T of the task gradients (K, K); 0 for a single task."""
    k = gramian.shape[0]
    if k < 2:
        return 0.0
    pairs = torch.triu_indices(k, k, offset=1)
    return float((gramian[pairs[0], pairs[1]] < 0).float().mean())


class MultitaskMethod(nn.Module):
    """Turns a batch's losses into gradients; an nn.Module so that its state travels in `state_dict`.
    `inner` is the torchjd aggregator or scalarizer; its plain attributes (histories, solver weights) are
    saved as extra state, since torchjd keeps them outside parameters and buffers."""

    needs_second_look = False  # FAMO: `after_step` wants the losses of the same batch after the step

    def __init__(self, num_tasks: int, inner: nn.Module | None = None):
        super().__init__()
        self.num_tasks, self.inner = num_tasks, inner

    def gradients(self, forward: Callable[[dict[str, Any]], dict[str, torch.Tensor]], batch: dict[str, Any],
                  parameters: list[nn.Parameter], separable: bool) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
        """Run the policy's `forward` (batch -> its `compute_loss` outputs) and fill the parameters' .grad;
        returns the outputs and what to log. `separable`: the policy's losses are per sample
        (`MultitaskPolicy.losses_are_per_sample`), so a method may run `forward` on parts of the batch."""
        outputs = forward(batch)
        return outputs, self.backward(outputs, batch[TASK_INDEX], parameters)

    def backward(self, outputs: dict[str, torch.Tensor], tasks: torch.Tensor,
                 parameters: list[nn.Parameter]) -> dict[str, float]:
        """Fill the parameters' .grad from the policy's `outputs` for a batch of `tasks` (B,); returns what to log."""
        raise NotImplementedError

    def after_step(self, outputs: dict[str, torch.Tensor], tasks: torch.Tensor) -> None:
        """Called with the losses recomputed on the same batch after the optimizer step (`needs_second_look`)."""

    def extra_parameters(self) -> list[nn.Parameter]:
        """Parameters the model's optimizer learns too (e.g. uncertainty weighting's log-variances)."""
        return []

    @staticmethod
    def _report(losses: torch.Tensor, present: torch.Tensor) -> dict[str, float]:
        return {f"task_loss/{int(t)}": float(loss) for t, loss in zip(present, losses.detach())}

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        modules = dict(self.named_modules())
        for key, value in state_dict.items():  # buffers torchjd registers empty (None) until first used
            owner, _, name = key.rpartition(".")
            module = modules.get(owner)
            if module is not None and name in module._buffers and module._buffers[name] is None:
                module._buffers[name] = value.clone()
        return super().load_state_dict(state_dict, strict, assign)

    def get_extra_state(self) -> dict[str, Any]:
        if self.inner is None:
            return {}
        return {name: {k: _to_saved(v) for k, v in vars(module).items() if _is_plain_state(k, v)}
                for name, module in self.inner.named_modules()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        modules = dict(self.inner.named_modules()) if self.inner is not None else {}
        for name, attributes in state.items():
            for key, value in attributes.items():
                setattr(modules[name], key, _from_saved(value))


def _is_plain_state(key: str, value: Any) -> bool:
    if key.startswith("__") or key in ("training",):
        return False
    if isinstance(value, (list, tuple)):
        return all(_is_plain_state(key, v) for v in value)
    return isinstance(value, (torch.Tensor, np.ndarray, int, float, bool, torch.dtype)) or value is None


def _to_saved(value: Any) -> Any:
    return {"numpy": torch.from_numpy(np.array(value))} if isinstance(value, np.ndarray) else value


def _from_saved(value: Any) -> Any:
    return value["numpy"].numpy() if isinstance(value, dict) and "numpy" in value else value


@METHODS.register("sum")
class SumMethod(MultitaskMethod):
    """Gradient descent on the batch loss, as without any method."""

    def __init__(self, config: MultitaskConfig, num_tasks: int):
        super().__init__(num_tasks)

    def backward(self, outputs, tasks, parameters):
        outputs["loss"].backward()
        losses, present = task_losses(outputs["loss_per_sample"].detach(), tasks, self.num_tasks)
        return self._report(losses, present)


class AggregatorMethod(MultitaskMethod):
    """A torchjd aggregator over the Jacobian of the task losses (and of the policy's auxiliary loss, if any).

    With `per_task_forward` and a policy whose losses are per sample, row t of the Jacobian is the gradient of
    task t's mean loss from a forward and backward pass over task t's rows alone: the same row as in the whole
    batch's Jacobian (other rows contribute nothing to it), without back-propagating zeros through them."""

    def __init__(self, num_tasks: int, inner: nn.Module, per_task_forward: bool = True):
        super().__init__(num_tasks, inner)
        self.per_task_forward = per_task_forward

    def gradients(self, forward, batch, parameters, separable):
        if not (self.per_task_forward and separable):
            return super().gradients(forward, batch, parameters, separable)
        tasks = batch[TASK_INDEX]
        present = tasks.unique(sorted=True)
        rows: list[tuple[torch.Tensor | None, ...]] = []
        per_sample = torch.zeros(len(tasks), device=tasks.device)
        scalars: dict[str, torch.Tensor] = {}
        for task in present:
            at = (tasks == task).nonzero().flatten()
            outputs = forward(rows_of(batch, at))
            if "loss_aux" in outputs:
                raise RuntimeError("a policy whose losses are per sample returned a batch-level loss_aux")
            task_loss = outputs["loss_per_sample"].mean()
            rows.append(torch.autograd.grad(task_loss, parameters, allow_unused=True))
            per_sample[at] = outputs["loss_per_sample"].detach().float()
            for name, value in outputs.items():  # the batch's scalars: means over its rows
                if value.dim() == 0:
                    scalars[name] = scalars.get(name, 0) + value.detach() * len(at) / len(tasks)
        for i, parameter in enumerate(parameters):
            grads = [row[i] for row in rows]
            if any(g is not None for g in grads):
                parameter.jac = torch.stack([torch.zeros_like(parameter) if g is None else g for g in grads])
        losses, _ = task_losses(per_sample, tasks, self.num_tasks)
        return scalars | {"loss_per_sample": per_sample}, self._aggregate(losses, present, parameters)

    def backward(self, outputs, tasks, parameters):
        from torchjd.autojac import backward

        losses, present = task_losses(outputs["loss_per_sample"], tasks, self.num_tasks)
        aux = outputs.get("loss_aux")
        backward([*losses, aux] if aux is not None else list(losses), inputs=parameters)
        return self._aggregate(losses, present, parameters)

    def _aggregate(self, losses: torch.Tensor, present: torch.Tensor, parameters: list[nn.Parameter]) -> dict:
        """The parameters' .jac (K or K + 1 objectives, ...) -> their .grad, by the aggregator."""
        from torchjd.autojac import jac_to_grad

        with_jac = [p for p in parameters if getattr(p, "jac", None) is not None]
        jacobian = torch.cat([p.jac.reshape(len(p.jac), -1) for p in with_jac], dim=1)
        conflict = conflict_share((jacobian @ jacobian.T)[:len(losses), :len(losses)])
        jac_to_grad(with_jac, self.inner)
        return self._report(losses, present) | {"gradient_conflict": conflict}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        super().set_extra_state(state)
        for module in self.inner.modules():  # Nash-MTL: its convex problem is rebuilt around the restored weights
            if hasattr(module, "_init_optim_problem") and getattr(module, "step", 0) > 0:
                module._init_optim_problem()


def _register_aggregator(name: str, build: Callable[[MultitaskConfig, int], nn.Module]) -> None:
    METHODS.register(name, lambda config, num_tasks: AggregatorMethod(num_tasks, build(config, num_tasks),
                                                                      config.per_task_forward))


def _objectives(config: MultitaskConfig, num_tasks: int) -> int:
    """Rows of the Jacobian a method with a fixed number of objectives sees: the tasks of a batch."""
    return config.tasks_per_batch or num_tasks


_register_aggregator("upgrad", lambda c, n: torchjd_aggregation().UPGrad())
_register_aggregator("pcgrad", lambda c, n: torchjd_aggregation().PCGrad())
_register_aggregator("cagrad", lambda c, n: torchjd_aggregation().CAGrad(c.cagrad_c))
_register_aggregator("imtl_g", lambda c, n: torchjd_aggregation().IMTLG())
_register_aggregator("aligned_mtl", lambda c, n: torchjd_aggregation().AlignedMTL())
_register_aggregator("mgda", lambda c, n: torchjd_aggregation().MGDA())
_register_aggregator("dualproj", lambda c, n: torchjd_aggregation().DualProj())
_register_aggregator("gradvac", lambda c, n: torchjd_aggregation().GradVac())
_register_aggregator("nash_mtl", lambda c, n: torchjd_aggregation().NashMTL(n_tasks=_objectives(c, n)))


def torchjd_aggregation():
    from torchjd import aggregation

    return aggregation


class ScalarizerMethod(MultitaskMethod):
    """A torchjd scalarizer of the task losses: one weighted loss, one ordinary backward. Needs every task
    in every batch (its weights are one per task of the suite)."""

    def backward(self, outputs, tasks, parameters):
        losses, present = task_losses(outputs["loss_per_sample"], tasks, self.num_tasks)
        if len(present) != self.num_tasks:
            raise ValueError(f"{type(self.inner).__name__} weighs all {self.num_tasks} tasks, but this batch holds "
                             f"{len(present)}: use trainer.multitask.tasks_per_batch={self.num_tasks}")
        aux = outputs.get("loss_aux")
        loss = self.inner(losses) + (aux if aux is not None else 0.0)
        loss.backward()
        return self._report(losses, present) | self._weights()

    def _weights(self) -> dict[str, float]:
        return {}


@METHODS.register("uncertainty")
class UncertaintyMethod(ScalarizerMethod):
    """Kendall et al.'s uncertainty weighting: sum_i exp(-s_i) L_i / 2 + s_i / 2, the s_i learned with the model."""

    def __init__(self, config: MultitaskConfig, num_tasks: int):
        from torchjd.scalarization import UW

        super().__init__(num_tasks, UW(num_tasks))

    def extra_parameters(self) -> list[nn.Parameter]:
        return [self.inner.log_var]

    def _weights(self) -> dict[str, float]:
        return {f"task_weight/{i}": math.exp(-float(s)) for i, s in enumerate(self.inner.log_var.detach())}


@METHODS.register("dwa")
class DWAMethod(ScalarizerMethod):
    """Dynamic weight average: tasks whose loss falls slowly get more weight."""

    def __init__(self, config: MultitaskConfig, num_tasks: int):
        from torchjd.scalarization import DWA

        super().__init__(num_tasks, DWA(temperature=config.dwa_temperature))


@METHODS.register("famo")
class FAMOMethod(ScalarizerMethod):
    """FAMO: learned task weights, updated from how much each loss fell over the step (the same batch, the
    same diffusion noise); its logits have their own Adam inside torchjd, saved with the method."""

    needs_second_look = True

    def __init__(self, config: MultitaskConfig, num_tasks: int):
        from torchjd.scalarization import FAMO

        super().__init__(num_tasks, FAMO(num_tasks, lr=config.famo_lr))

    def after_step(self, outputs, tasks):
        losses, _ = task_losses(outputs["loss_per_sample"].detach(), tasks, self.num_tasks)
        self.inner.update(losses)

    def _weights(self) -> dict[str, float]:
        return {f"task_weight/{i}": float(w) for i, w in enumerate(torch.softmax(self.inner._w.detach().flatten(), 0))}

    def get_extra_state(self) -> dict[str, Any]:
        optimizer = self.inner._optimizer
        return super().get_extra_state() | {"_adam": optimizer.state_dict() if optimizer is not None else None}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        state = dict(state)
        adam = state.pop("_adam", None)
        super().set_extra_state(state)
        if adam is not None:
            self.inner._optimizer = torch.optim.Adam([self.inner._w], lr=self.inner.lr,
                                                     weight_decay=self.inner.weight_decay)
            self.inner._optimizer.load_state_dict(adam)


def make_method(config: MultitaskConfig, num_tasks: int) -> MultitaskMethod:
    return METHODS.get(config.method)(config, num_tasks)
