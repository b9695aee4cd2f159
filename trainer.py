"""The training loop every policy shares (through `compute_loss`), owned by train.py.

    trainer = Trainer(config, policy, dataset, out_dir, sample_weights=None, metadata={"suite": ...}, progress=True)
    trainer.add_callback(every=5000, fn=lambda step, trainer: ...)    # e.g. periodic evaluation
    trainer.fit()                                                      # resumes from out_dir/checkpoints/last

AdamW with linear warmup and cosine decay (diffusers' schedule), EMA weights (diffusers'
EMAModel with Diffusion Policy's warmup), gradient clipping, bf16 autocast on CUDA, optional
torch.compile, TensorBoard logs and a progress bar. Batches are drawn by `StepBatchSampler`,
a pure function of (seed, step), so a resumed run sees exactly the batches the uninterrupted
run would have seen; with the RNG state, optimizer, scheduler and EMA restored it reaches the
same weights. Under `torchrun` each process trains on its shard of every global batch through
DistributedDataParallel (NCCL on GPUs, gloo on CPUs); rank 0 alone writes files.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from diffusers.optimization import get_cosine_schedule_with_warmup
from diffusers.training_utils import EMAModel
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Sampler
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from policies.acting import select_device
from policies.base import MultitaskPolicy
from policies.checkpoint import CheckpointError, read_checkpoint_record, replace_directory, save_policy
from policies.registry import make_policy
from schema import TASK_INDEX

log = logging.getLogger("train")

TRAINING_STATE_FILE = "training_state.pt"
MIXED_PRECISION = ("auto", "bf16", "no")


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
    seed: int = 0
    device: str = "auto"  # auto (cuda if available, else cpu), cpu, cuda, cuda:1, ...
    mixed_precision: str = "auto"  # auto (bf16 autocast on CUDA only), bf16 (also on CPU), no
    compile: bool = False  # torch.compile the policy (needs a C++ compiler; pays off on GPUs)
    dataloader_workers: int = 0  # 0: load batches in the training process (best for state-only data)
    log_every: int = 100  # steps between TensorBoard points and progress-bar updates
    checkpoint_every: int = 5_000  # steps between checkpoints; one is always written at the end

    def __post_init__(self) -> None:
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}")
        if self.num_steps < 1 or self.batch_size < 1:
            raise ValueError(f"num_steps and batch_size must be >= 1, got {self.num_steps} and {self.batch_size}")


class StepBatchSampler(Sampler[list[int]]):
    """Index batches for steps start_step..num_steps-1, each a pure function of (seed, step, rank).

    Every epoch is a fresh permutation of the samples (or, with `weights`, as many weighted draws
    with replacement), cut into global batches of batch_size x world_size; rank r takes every
    world_size-th index of each. Datasets smaller than one global batch are drawn with replacement.
    """

    def __init__(self, num_samples: int, batch_size: int, num_steps: int, seed: int, start_step: int = 0,
                 weights: torch.Tensor | None = None, rank: int = 0, world_size: int = 1):
        self.num_samples, self.batch_size, self.num_steps = num_samples, batch_size, num_steps
        self.seed, self.start_step, self.weights = seed, start_step, weights
        self.rank, self.world_size = rank, world_size
        self.global_batch = batch_size * world_size
        self.batches_per_epoch = max(1, num_samples // self.global_batch)

    def _epoch(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        draws = self.batches_per_epoch * self.global_batch
        if self.weights is not None:
            return torch.multinomial(self.weights, draws, replacement=True, generator=generator)
        if self.num_samples < draws:
            return torch.randint(self.num_samples, (draws,), generator=generator)
        return torch.randperm(self.num_samples, generator=generator)[:draws]

    def __iter__(self) -> Iterator[list[int]]:
        epoch, order = -1, None
        for step in range(self.start_step, self.num_steps):
            if step // self.batches_per_epoch != epoch:
                epoch = step // self.batches_per_epoch
                order = self._epoch(epoch)
            start = (step % self.batches_per_epoch) * self.global_batch
            yield order[start + self.rank:start + self.global_batch:self.world_size].tolist()

    def __len__(self) -> int:
        return self.num_steps - self.start_step


def move_to(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Tensors to `device`; everything else (instruction strings) as is."""
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def distributed_context() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from torchrun's environment; (0, 0, 1) for a plain run."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def init_distributed(device: str) -> tuple[int, int, int]:
    """Join torchrun's process group once (NCCL for CUDA devices, else gloo); returns distributed_context()."""
    rank, local_rank, world_size = distributed_context()
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if select_device(device).type == "cuda" else "gloo")
    return rank, local_rank, world_size


class Trainer:
    """Trains one policy on one dataset; see the module docstring."""

    def __init__(self, config: TrainerConfig, policy: MultitaskPolicy, dataset: Dataset, out_dir: str | Path,
                 sample_weights: torch.Tensor | None = None, metadata: dict[str, Any] | None = None,
                 progress: bool = True):
        self.config, self.dataset, self.out_dir = config, dataset, Path(out_dir)
        self.progress = progress
        self.metadata = metadata or {}
        self.rank, local_rank, self.world_size = init_distributed(config.device)
        device = select_device(config.device)
        if device.type == "cuda" and self.world_size > 1:
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        self.device = device
        self.policy = policy.to(device)
        self.sample_weights = sample_weights  # (N,) draw probabilities of the samples; None: uniform
        self.optimizer = torch.optim.AdamW(policy.parameters(), lr=config.optim.lr, betas=tuple(config.optim.betas),
                                           weight_decay=config.optim.weight_decay)
        self.lr_scheduler = get_cosine_schedule_with_warmup(self.optimizer, config.optim.warmup_steps,
                                                            config.num_steps)
        self.ema = (EMAModel(policy.parameters(), decay=config.ema.max_decay, use_ema_warmup=True,
                             power=config.ema.power) if config.ema.enabled else None)
        self.step = 0
        self.callbacks: list[tuple[int, Callable[[int, "Trainer"], dict[str, float] | None]]] = []
        self.writer: SummaryWriter | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def checkpoint_dir(self) -> Path:
        return self.out_dir / "checkpoints"

    def add_callback(self, every: int, fn: Callable[[int, "Trainer"], dict[str, float] | None]) -> None:
        """Call fn(step, trainer) on rank 0 every `every` steps and at the end; returned scalars are logged."""
        if every > 0:
            self.callbacks.append((every, fn))

    def autocast(self):
        mode = self.config.mixed_precision
        if mode == "bf16" or (mode == "auto" and self.device.type == "cuda"):
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def acting_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights to act with: the EMA weights (buffers from the model) or the model's own."""
        if self.ema is None:
            return {k: v.detach().clone() for k, v in self.policy.state_dict().items()}
        parameters = list(self.policy.parameters())
        self.ema.store(parameters)
        self.ema.copy_to(parameters)
        state = {k: v.detach().clone() for k, v in self.policy.state_dict().items()}
        self.ema.restore(parameters)
        return state

    def acting_policy(self) -> MultitaskPolicy:
        """A copy of the policy carrying the acting weights, in eval mode (for evaluation during training)."""
        policy = make_policy(self.policy.config, self.policy.spec)
        policy.load_state_dict(self.acting_state_dict())
        return policy.to(self.device).eval()

    # ---- checkpoints -------------------------------------------------------------------------------

    def save_checkpoint(self) -> Path:
        """checkpoints/last (acting weights, config and training state) and checkpoints/step_<N> (acting only)."""
        metadata = self.metadata | {"step": self.step, "num_steps": self.config.num_steps}
        acting = self.acting_state_dict()
        last = save_policy(self.checkpoint_dir / ".last.staging", self.policy, acting, metadata)
        state = {"step": self.step, "model": self.policy.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "lr_scheduler": self.lr_scheduler.state_dict(), "rng_cpu": torch.get_rng_state(),
                 "ema": self.ema.state_dict() if self.ema is not None else {}}
        if torch.cuda.is_available():
            state["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        torch.save(state, last / TRAINING_STATE_FILE)
        save_policy(self.checkpoint_dir / f"step_{self.step:07d}", self.policy, acting, metadata)
        replace_directory(last, self.checkpoint_dir / "last")
        return self.checkpoint_dir / "last"

    def try_resume(self) -> bool:
        """Restore everything from checkpoints/last if it exists; True if resumed."""
        path = self.checkpoint_dir / "last" / TRAINING_STATE_FILE
        if not path.exists():
            return False
        record = read_checkpoint_record(path.parent)
        if record["config"] != asdict(self.policy.config) or record["spec"] != self.policy.spec.to_dict():
            raise CheckpointError(f"{path.parent} holds a different policy (config or task table) than this run; "
                                  "use another out_dir, or delete it to start over")
        if record["metadata"].get("num_steps") != self.config.num_steps:
            log.warning("resuming a run planned for %s steps with num_steps=%d: the learning-rate schedule "
                        "changes from here on", record["metadata"].get("num_steps"), self.config.num_steps)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError) as error:
            raise CheckpointError(f"cannot read {path} to resume ({error}); delete {path.parent} to start over") \
                from error
        self.policy.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.lr_scheduler.load_state_dict(state["lr_scheduler"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
            self.ema.to(self.device)
        torch.set_rng_state(state["rng_cpu"])
        if "rng_cuda" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng_cuda"], self.device)
        self.step = int(state["step"])
        log.info("resumed from %s at step %d", path.parent, self.step)
        return True

    # ---- the loop ----------------------------------------------------------------------------------

    def _loader(self) -> DataLoader:
        sampler = StepBatchSampler(len(self.dataset), self.config.batch_size, self.config.num_steps,
                                   self.config.seed, self.step, self.sample_weights, self.rank, self.world_size)
        workers = self.config.dataloader_workers
        return DataLoader(self.dataset, batch_sampler=sampler, num_workers=workers,
                          pin_memory=self.device.type == "cuda", persistent_workers=False,
                          prefetch_factor=4 if workers else None,
                          generator=torch.Generator().manual_seed(self.config.seed))

    def _model(self) -> torch.nn.Module:
        model: torch.nn.Module = self.policy
        if self.world_size > 1:
            model = DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda"
                                            else None)
        if self.config.compile:
            model = torch.compile(model)
        return model

    @contextmanager
    def _atomic_step(self) -> Iterator[None]:
        """Hold Ctrl-C and SIGTERM until the step in hand is complete, then raise KeyboardInterrupt, so a
        checkpoint never holds an optimizer that stepped without its scheduler, EMA or step counter."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        received: list[int] = []
        previous = {s: signal.signal(s, lambda signum, frame: received.append(signum))
                    for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        if received:
            raise KeyboardInterrupt(f"signal {received[0]}")

    def train_step(self, model: torch.nn.Module, batch: dict[str, Any]) -> dict[str, float]:
        """One optimizer step on one batch; returns loss and gradient norm."""
        with self.autocast():
            loss = model(move_to(batch, self.device))["loss"]
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at step {self.step}; lower optim.lr or check the data")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip = self.config.optim.grad_clip_norm
        grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), clip if clip > 0 else math.inf)
        self.optimizer.step()
        self.lr_scheduler.step()
        if self.ema is not None:
            self.ema.step(self.policy.parameters())
        self.step += 1
        return {"loss": loss.item(), "grad_norm": grad_norm.item()}

    def fit(self) -> int:
        """Train to `num_steps` (resuming if possible); saves a checkpoint on the way out, also on Ctrl-C."""
        torch.manual_seed(self.config.seed + self.rank)
        self.try_resume()
        if self.is_main:
            self.writer = SummaryWriter(str(self.out_dir / "tensorboard"), purge_step=self.step)
        model = self._model()
        model.train()
        bar = tqdm(total=self.config.num_steps, initial=self.step, desc="train", unit="step", dynamic_ncols=True,
                   disable=not (self.progress and self.is_main))
        window: list[dict[str, float]] = []
        started, samples = time.perf_counter(), 0
        try:
            for batch in self._loader():
                with self._atomic_step():
                    window.append(self.train_step(model, batch))
                samples += len(batch[TASK_INDEX]) * self.world_size
                bar.update(1)
                if self.step % self.config.log_every == 0 or self.step == self.config.num_steps:
                    scalars = {k: sum(w[k] for w in window) / len(window) for k in window[0]}
                    scalars |= {"lr": self.lr_scheduler.get_last_lr()[0],
                                "samples_per_s": samples / (time.perf_counter() - started)}
                    self._log("train", scalars)
                    bar.set_postfix(loss=f"{scalars['loss']:.4f}", refresh=False)
                    window, started, samples = [], time.perf_counter(), 0
                self._after_step(model)
        except KeyboardInterrupt:
            if self.is_main and self.step > 0:
                log.warning("interrupted at step %d; checkpoint saved in %s, re-run to resume", self.step,
                            self.save_checkpoint())
            raise
        finally:
            bar.close()
            if self.writer is not None:
                self.writer.close()
        return self.step

    def _after_step(self, model: torch.nn.Module) -> None:
        final = self.step == self.config.num_steps
        checkpointing = final or self.step % self.config.checkpoint_every == 0
        if self.is_main and checkpointing:
            self.save_checkpoint()
        if self.is_main:
            for every, fn in self.callbacks:
                if final or self.step % every == 0:
                    self._log("eval", fn(self.step, self) or {})
                    model.train()
        if self.world_size > 1 and checkpointing:
            dist.barrier()

    def _log(self, prefix: str, scalars: dict[str, float]) -> None:
        if self.writer is None:
            return
        for name, value in scalars.items():
            self.writer.add_scalar(f"{prefix}/{name}", value, self.step)
        self.writer.flush()
