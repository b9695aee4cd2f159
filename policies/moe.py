"""Sparse mixtures of experts for the denoisers (Sparse Diffusion Policy, MoDE), one implementation for both.

    layer = MixtureOfExperts(lambda: ConvBlock(64, 64, 5), MoEConfig(num_experts=4, top_k=2), context_dims)
    y = layer(x, route)          # x (B, ...) -> (B, ...); route: the routing context of the batch

A layer holds E experts (any module mapping x to an output of one shape) and its own router. The router
reads a per-sample routing context, not the tokens: the task's embedding, the instruction's embedding, the
diffusion step's embedding, or their sum (`router_input`), so every action of a chunk goes through the same
experts. It keeps the `top_k` largest logits (Gaussian noise of std `router_noise` added while training:
noisy top-k) and mixes those experts' outputs with the softmax of their logits:

    y_b = sum over the top-k experts e of g_be * expert_e(x_b)

While training a sample is computed only by its k experts; at inference every expert in use computes the
whole (fixed-size) micro-batch, so that a sample's actions never depend on the rest of its batch. The
Switch-style balance loss `E * sum_e f_e * P_e` (f_e: share
of the top-k assignments that went to e, P_e: mean router probability of e) is 1 for uniform routing and E
for collapsed routing; the policy adds `balance_loss_weight` times the layers' sum to its loss.

At inference the routing depends only on (task, diffusion step) when no instruction embedding outside the
task table is given: the gates of each (task, step) are computed once, on their own, and cached (MoDE caches
its experts per noise level the same way), so acting pays only for the experts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import torch
from torch import nn

ROUTE_TASK, ROUTE_INSTRUCTION, ROUTE_STEP = "task", "instruction", "step"  # embeddings (B, D) a router reads
ROUTE_TIMESTEP = "timestep"  # (B,) int64: the diffusion step of each sample
ROUTE_KEY = "key"  # (B,) int64: the task index when the routing depends only on (task, step), else absent


class RouterInput(StrEnum):
    task = "task"
    instruction = "instruction"
    step = "step"
    task_step = "task_step"  # the sum of the task's and the step's embeddings (projected)
    instruction_step = "instruction_step"
    task_instruction_step = "task_instruction_step"

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.value.split("_"))


@dataclass
class MoEConfig:
    num_experts: int = 0  # E; 0: dense layers, no mixture
    top_k: int = 2  # experts per sample
    router_input: RouterInput = RouterInput.task_step  # what the router reads (the sum of the parts named)
    router_dim: int = 64  # width the routing context is projected to
    router_noise: float = 1.0  # std of the Gaussian noise on router logits while training
    balance_loss_weight: float = 0.01  # weight of the load-balancing loss in the policy's loss

    def __post_init__(self) -> None:
        self.router_input = RouterInput(self.router_input)
        if self.num_experts < 0 or (self.num_experts and not 1 <= self.top_k <= self.num_experts):
            raise ValueError(f"need num_experts >= 0 and 1 <= top_k <= num_experts, got num_experts="
                             f"{self.num_experts}, top_k={self.top_k}")

    @property
    def enabled(self) -> bool:
        return self.num_experts > 0


def balance_loss(probs: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """Switch Transformer's load-balancing loss from router probabilities (B, E) and the top-k choices
    (B, k) of a batch: E * sum_e f_e * P_e; 1 for uniform routing, E when every sample picks one expert."""
    experts = probs.shape[-1]
    share = torch.zeros(experts, device=probs.device).index_add_(
        0, chosen.flatten(), torch.ones(chosen.numel(), device=probs.device)) / chosen.numel()
    return experts * (share * probs.float().mean(0)).sum()


class Router(nn.Module):
    """Routing context {part: (B, D_part)} -> top-k gates (B, E), plus its probabilities and choices."""

    def __init__(self, config: MoEConfig, context_dims: dict[str, int]):
        super().__init__()
        self.config = config
        missing = [p for p in config.router_input.parts if p not in context_dims]
        if missing:
            raise ValueError(f"router_input={config.router_input} needs {missing}, which this policy does not "
                             f"condition on (it has {sorted(context_dims)})")
        self.projections = nn.ModuleDict({p: nn.Linear(context_dims[p], config.router_dim)
                                          for p in config.router_input.parts})
        self.logits = nn.Sequential(nn.SiLU(), nn.Linear(config.router_dim, config.num_experts))

    def forward(self, route: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> gates (B, E) (zero outside each sample's top k), probabilities (B, E), chosen experts (B, k)."""
        hidden = sum(projection(route[part]) for part, projection in self.projections.items())
        logits = self.logits(hidden).float()
        probs = logits.softmax(-1)
        if self.training and self.config.router_noise > 0:
            logits = logits + torch.randn_like(logits) * self.config.router_noise
        top, chosen = logits.topk(self.config.top_k, dim=-1)
        gates = torch.zeros_like(logits).scatter(-1, chosen, top.softmax(-1))
        return gates, probs, chosen


class MixtureOfExperts(nn.Module):
    """E experts made by `make_expert`, mixed per sample by its own router; see the module docstring.

    After each training forward, `balance_loss` holds this layer's load-balancing loss and `last_gates` the
    batch's gates (B, E).
    """

    def __init__(self, make_expert: Callable[[], nn.Module], config: MoEConfig, context_dims: dict[str, int]):
        super().__init__()
        self.config = config
        self.experts = nn.ModuleList([make_expert() for _ in range(config.num_experts)])
        self.router = Router(config, context_dims)
        self.balance_loss: torch.Tensor | None = None
        self.last_gates: torch.Tensor | None = None
        self._cache: dict[tuple[int, int], torch.Tensor] = {}

    def train(self, mode: bool = True) -> "MixtureOfExperts":
        self._cache = {}  # cached gates belong to the weights of one eval period
        return super().train(mode)

    def gates(self, route: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, E) gates. While training: for the whole batch at once. At inference: each sample's gates
        computed on their own (batch of one), and looked up per (task, step) where the routing allows it, so
        a sample's gates never depend on the rest of its batch."""
        if self.training:
            gates, probs, chosen = self.router(route)
            self.balance_loss, self.last_gates = balance_loss(probs, chosen), gates.detach()
            return gates
        parts = {part: value for part, value in route.items() if part in self.router.projections}
        rows = len(next(iter(parts.values())))
        if ROUTE_KEY not in route:
            return torch.cat([self._route_one(parts, i) for i in range(rows)])
        keys = list(zip(route[ROUTE_KEY].tolist(), route[ROUTE_TIMESTEP].tolist()))
        for i, key in enumerate(keys):
            if key not in self._cache:
                self._cache[key] = self._route_one(parts, i)[0]
        return torch.stack([self._cache[key] for key in keys])

    def _route_one(self, parts: dict[str, torch.Tensor], row: int) -> torch.Tensor:
        return self.router({part: value[row:row + 1] for part, value in parts.items()})[0]

    def forward(self, x: torch.Tensor, route: dict[str, torch.Tensor]) -> torch.Tensor:
        """While training, each expert computes only the samples routed to it. At inference every expert in use
        computes the whole batch and the gates pick (a zero gate adds exactly nothing): a sample's result then
        never depends on which other samples share its batch, which reproducible evaluation needs."""
        gates = self.gates(route).to(x.dtype)
        shape = (-1, *([1] * (x.dim() - 1)))
        out = None
        if not self.training:  # the experts any row uses, found with one host sync instead of one per expert
            for e in gates.any(0).nonzero().flatten().tolist():
                part = self.experts[e](x) * gates[:, e].reshape(shape)
                out = part if out is None else out + part
            return out
        for e, expert in enumerate(self.experts):
            rows = gates[:, e].nonzero().flatten()
            if len(rows) == 0:
                continue
            part = expert(x[rows]) * gates[rows, e].reshape(shape)
            if out is None:
                out = torch.zeros(len(x), *part.shape[1:], dtype=part.dtype, device=x.device)
            out = out.index_add(0, rows, part)
        return out

    @torch.no_grad()
    def usage(self, route: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, E): each routing context's share of top-k assignments per expert, without router noise."""
        training = self.router.training
        self.router.eval()
        try:
            _, _, chosen = self.router(route)
        finally:
            self.router.train(training)
        share = torch.zeros(len(chosen), self.config.num_experts, device=chosen.device)
        return share.scatter_add_(-1, chosen, torch.full(chosen.shape, 1.0 / self.config.top_k, device=chosen.device))


def moe_layers(module: nn.Module) -> list[tuple[str, MixtureOfExperts]]:
    """Every mixture-of-experts layer inside `module`, with its name."""
    return [(name, m) for name, m in module.named_modules() if isinstance(m, MixtureOfExperts)]
