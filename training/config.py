"""Typed configuration of the training loop (`trainer.*` in configs/train.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from training.multitask import MultitaskConfig


class Trainable(StrEnum):
    all = "all"  # every parameter of the policy
    adapters = "adapters"  # only the per-task adapters (policy.adapters): fine-tunes that leave other tasks as they are


class MixedPrecision(StrEnum):
    auto = "auto"  # bf16 autocast on CUDA only
    bf16 = "bf16"  # bf16 autocast, also on CPU
    no = "no"  # float32 throughout


@dataclass
class OptimConfig:
    lr: float = 1e-4  # peak learning rate of AdamW
    betas: list[float] = field(default_factory=lambda: [0.95, 0.999])
    weight_decay: float = 1e-6
    warmup_steps: int = 500  # linear warmup, then cosine decay to 0 at num_steps
    grad_clip_norm: float = 1.0  # 0 = no clipping


@dataclass
class EMAConfig:
    enabled: bool = True  # act with an exponential moving average of the weights
    max_decay: float = 0.9999
    power: float = 0.75  # decay = 1 - (1 + step) ** -power, capped at max_decay (Diffusion Policy)


@dataclass
class TrainerConfig:
    num_steps: int = 20_000  # optimizer steps in total (a resumed run stops at the same step)
    batch_size: int = 256  # per process; the global batch is batch_size x world size
    optim: OptimConfig = field(default_factory=OptimConfig)
    ema: EMAConfig = field(default_factory=EMAConfig)
    multitask: MultitaskConfig = field(default_factory=MultitaskConfig)  # how per-task losses become an update
    trainable: Trainable = Trainable.all  # all, or adapters only
    seed: int = 0
    device: str = "auto"  # auto (cuda if available, else cpu), cpu, cuda, cuda:1, ...
    mixed_precision: MixedPrecision = MixedPrecision.auto  # auto (bf16 on CUDA only), bf16 (also on CPU), no
    compile: bool = False  # torch.compile the policy (needs a C++ compiler; pays off on GPUs)
    dataloader_workers: int = 0  # 0: load batches in the training process (best for state-only data)
    num_threads: int = 0  # torch threads per process; 0: the cores free when training starts (common.threads)
    log_every: int = 100  # steps between TensorBoard points and progress-bar updates
    checkpoint_every: int = 5_000  # steps between checkpoints; one is always written at the end
    distributed_timeout_s: float = 600.0  # DDP: how long a training step's collective may wait for a rank
    main_process_timeout_s: float = 86_400.0  # DDP: how long the other ranks wait for rank 0's evaluations

    def __post_init__(self) -> None:
        for name in ("num_steps", "batch_size", "log_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"trainer.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("num_threads", "dataloader_workers"):
            if getattr(self, name) < 0:
                raise ValueError(f"trainer.{name} must be >= 0, got {getattr(self, name)}")
        if self.distributed_timeout_s <= 0 or self.main_process_timeout_s <= 0:
            raise ValueError("trainer.distributed_timeout_s and trainer.main_process_timeout_s must be > 0")
