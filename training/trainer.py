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

import io
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from diffusers.optimization import get_cosine_schedule_with_warmup
from diffusers.training_utils import EMAModel
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from torch.utils.tensorboard import SummaryWriter

from common.atomic import DiskFullError, atomic_directory, recover_directory
from common.progress import progress_bar
from common.schema import TASK_INDEX
from common.threads import training_threads
from policies.acting import select_device
from policies.adapters import adapter_parameters
from policies.base import MultitaskPolicy
from policies.checkpoint import CheckpointError, read_checkpoint_record, save_policy, write_policy_files
from policies.registry import make_policy
from training.config import MixedPrecision, Trainable, TrainerConfig
from training.distributed import init_distributed, wait_for_main_process
from training.multitask import make_method
from training.sampler import StepBatchSampler, TaskStratifiedBatchSampler

log = logging.getLogger("train")

TRAINING_STATE_FILE = "training_state.pt"


def move_to(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Tensors to `device`; everything else (instruction strings) as is."""
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def freeze_all_but_adapters(policy: MultitaskPolicy) -> None:
    """Train only the policy's per-task adapters (trainer.trainable=adapters)."""
    adapters = adapter_parameters(policy)
    if not adapters:
        raise ValueError("trainer.trainable=adapters, but the policy has no adapters: set policy.adapters.rank > 0 "
                         "or policy.adapters.task_heads=true")
    for parameter in policy.parameters():
        parameter.requires_grad_(False)
    for parameter in adapters:
        parameter.requires_grad_(True)


class Trainer:
    """Trains one policy on one dataset; see the module docstring."""

    def __init__(self, config: TrainerConfig, policy: MultitaskPolicy, dataset: Dataset, out_dir: str | Path,
                 sample_weights: torch.Tensor | None = None, metadata: dict[str, Any] | None = None,
                 progress: bool = True):
        self.config, self.dataset, self.out_dir = config, dataset, Path(out_dir)
        self.progress = progress
        self.metadata = metadata or {}
        self.rank, local_rank, self.world_size = init_distributed(config.device, config.distributed_timeout_s,
                                                                  config.main_process_timeout_s)
        device = select_device(config.device)
        if device.type == "cuda" and self.world_size > 1:
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        self.device = device
        self.policy = policy.to(device)
        self.sample_weights = sample_weights  # (N,) draw probabilities of the samples; None: uniform
        if config.trainable == Trainable.adapters:
            freeze_all_but_adapters(policy)
        self.method = make_method(config.multitask, len(policy.spec.tasks)).to(device)
        if self.world_size > 1 and config.multitask.method != "sum":
            raise ValueError(f"trainer.multitask.method={config.multitask.method} does not run under DDP: each "
                             "process would weigh or aggregate the task losses of its own shard of the batch, and "
                             "the methods' task weights and Jacobians are not synchronised across processes; "
                             "train it in one process (on one GPU), or use method=sum with DDP")
        adapters = {id(p) for p in adapter_parameters(policy)}
        shared = [p for p in policy.parameters() if p.requires_grad and id(p) not in adapters]
        per_task = [p for p in policy.parameters() if p.requires_grad and id(p) in adapters]
        # Per-task adapters are not decayed: a task absent from a batch keeps its adapter as it is.
        self.optimizer = torch.optim.AdamW([{"params": shared + self.method.extra_parameters()},
                                            {"params": per_task, "weight_decay": 0.0}],
                                           lr=config.optim.lr, betas=tuple(config.optim.betas),
                                           weight_decay=config.optim.weight_decay)
        self.lr_scheduler = get_cosine_schedule_with_warmup(self.optimizer, config.optim.warmup_steps,
                                                            config.num_steps)
        self.ema = (EMAModel(policy.parameters(), decay=config.ema.max_decay, use_ema_warmup=True,
                             power=config.ema.power) if config.ema.enabled else None)
        self.step = 0
        self.saved_step: int | None = None  # step of the training state in checkpoints/last (None: none yet)
        self._resumed: bool | None = None  # resume() has run (and whether it restored a run)
        self.callbacks: list[tuple[int, Callable[[int, "Trainer"], dict[str, float] | None]]] = []
        self.writer: SummaryWriter | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def checkpoint_dir(self) -> Path:
        return self.out_dir / "checkpoints"

    def add_callback(self, every: int, fn: Callable[[int, "Trainer"], dict[str, float] | None]) -> None:
        """Call fn(step, trainer) on rank 0 every `every` steps and at the end; returned scalars are logged.
        A callback that raises stops training, after a checkpoint of the step is saved."""
        if every > 0:
            self.callbacks.append((every, fn))

    def autocast(self):
        mode = self.config.mixed_precision
        if mode == MixedPrecision.bf16 or (mode == MixedPrecision.auto and self.device.type == "cuda"):
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

    def acting_policy(self, state: dict[str, torch.Tensor] | None = None) -> MultitaskPolicy:
        """A copy of the policy carrying the acting weights (or `state`), in eval mode, for evaluation.
        Building it leaves the random streams of training untouched (a checkpoint or an evaluation must
        not change what training draws next)."""
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            policy = make_policy(self.policy.config, self.policy.spec)
        policy.load_state_dict(self.acting_state_dict() if state is None else state)
        return policy.to(self.device).eval()

    # ---- checkpoints -------------------------------------------------------------------------------

    def save_checkpoint(self) -> Path:
        """checkpoints/last (acting weights, config and training state) and checkpoints/step_<N> (acting only).

        Raises:
            DiskFullError: saying which checkpoint is the last good one (checkpoints/last is never half written).
        """
        metadata = self.metadata | {"step": self.step, "num_steps": self.config.num_steps}
        acting = self.acting_state_dict()
        extras = self.acting_policy(acting).checkpoint_extras()  # e.g. expert usage, of the acting weights
        state = {"step": self.step, "model": self.policy.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "lr_scheduler": self.lr_scheduler.state_dict(), "rng_cpu": torch.get_rng_state(),
                 "ema": self.ema.state_dict() if self.ema is not None else {},
                 "multitask_method": self.method.state_dict(), "multitask_method_name": self.config.multitask.method}
        if torch.cuda.is_available():
            state["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        buffer = io.BytesIO()  # torch.save's own file errors hide the errno ("basic_ios::clear")
        torch.save(state, buffer)
        last = self.checkpoint_dir / "last"
        try:
            with atomic_directory(last) as tmp:
                write_policy_files(tmp, self.policy, acting, metadata, extras)
                (tmp / TRAINING_STATE_FILE).write_bytes(buffer.getvalue())
            self.saved_step = self.step
            save_policy(self.checkpoint_dir / f"step_{self.step:07d}", self.policy, acting, metadata, extras)
        except DiskFullError as error:
            good = f"{last} (step {self.saved_step})" if self.saved_step is not None else "none: no step was saved"
            raise DiskFullError(error.errno, f"{error.strerror} while saving the checkpoint of step {self.step}; "
                                             f"the last good checkpoint is {good}") from error
        return last

    def resume(self) -> bool:
        """Seed, then restore everything from checkpoints/last if it exists; True if a run was resumed.

        Runs once (`fit` calls it too). A checkpoints/last that a kill left half replaced is repaired first.
        Raises CheckpointError rather than start again from step 0 over a run's earlier checkpoints.
        """
        if self._resumed is None:
            torch.manual_seed(self.config.seed + self.rank)
            if self.is_main:
                repaired = recover_directory(self.checkpoint_dir / "last")
                if repaired:
                    log.warning("%s", repaired)
            wait_for_main_process()
            self._resumed = self._load_last()
        return self._resumed

    def _load_last(self) -> bool:
        path = self.checkpoint_dir / "last" / TRAINING_STATE_FILE
        if not path.exists():
            earlier = sorted(p.name for p in self.checkpoint_dir.glob("*") if not p.name.startswith("."))
            if earlier:
                raise CheckpointError(f"{self.checkpoint_dir} holds {earlier} but no training state to resume "
                                      f"from ({path} is missing); starting again from step 0 would overwrite "
                                      "them: use another out_dir, or delete the folder to start over")
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
        saved_method = state.get("multitask_method_name", "sum")
        if saved_method != self.config.multitask.method:
            raise CheckpointError(f"{path.parent} was trained with trainer.multitask.method={saved_method}, this run "
                                  f"asks for {self.config.multitask.method}; use another out_dir")
        self.method.load_state_dict(state.get("multitask_method", {}), strict="multitask_method" in state)
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
            self.ema.to(self.device)
        torch.set_rng_state(state["rng_cpu"])
        if "rng_cuda" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng_cuda"], self.device)
        self.step = self.saved_step = int(state["step"])
        log.info("resumed from %s at step %d", path.parent, self.step)
        return True

    # ---- the loop ----------------------------------------------------------------------------------

    def _loader(self) -> DataLoader:
        tasks_per_batch = self.config.multitask.tasks_per_batch
        if tasks_per_batch:
            sampler = TaskStratifiedBatchSampler(self.dataset.task_of_sample, tasks_per_batch, self.config.batch_size,
                                                 self.config.num_steps, self.config.seed, self.step, self.rank,
                                                 self.world_size)
        else:
            sampler = StepBatchSampler(len(self.dataset), self.config.batch_size, self.config.num_steps,
                                       self.config.seed, self.step, self.sample_weights, self.rank, self.world_size)
        workers = self.config.dataloader_workers
        return DataLoader(self.dataset, batch_sampler=sampler, num_workers=workers,
                          pin_memory=self.device.type == "cuda", persistent_workers=False,
                          prefetch_factor=4 if workers else None,
                          generator=torch.Generator().manual_seed(self.config.seed))

    def training_model(self) -> torch.nn.Module:
        """The module training steps run: the policy, wrapped for DDP and compiled as configured."""
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
        """One optimizer step on one batch; returns the loss and its parts, the per-task losses and what the
        multitask method and the policy report of the step (`training_scalars`)."""
        batch = move_to(batch, self.device)
        random_state = torch.get_rng_state() if self.method.needs_second_look else None
        def forward(part: dict[str, Any]) -> dict[str, torch.Tensor]:
            with self.autocast():
                outputs = model(part)
            if not torch.isfinite(outputs["loss"]):
                raise FloatingPointError(f"loss is {outputs['loss'].item()} at step {self.step}; lower optim.lr "
                                         f"or check the data")
            return outputs

        self.optimizer.zero_grad(set_to_none=True)
        outputs, reported = self.method.gradients(forward, batch, [p for p in self.policy.parameters()
                                                                   if p.requires_grad],
                                                  separable=self.policy.losses_are_per_sample)
        loss = outputs["loss"]
        clip = self.config.optim.grad_clip_norm
        grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), clip if clip > 0 else math.inf)
        self.optimizer.step()
        self.lr_scheduler.step()
        if self.ema is not None:
            self.ema.step(self.policy.parameters())
        if random_state is not None:  # the same batch again, with the same diffusion noise, after the step
            with torch.random.fork_rng(devices=[]), torch.no_grad(), self.autocast():
                torch.set_rng_state(random_state)
                self.method.after_step(model(batch), batch[TASK_INDEX])
        self.step += 1
        names = [t.name for t in self.policy.spec.tasks]
        reported = {(f"loss/{names[int(k.split('/')[1])]}" if k.startswith("task_loss/") else
                     f"task_weight/{names[int(k.split('/')[1])]}" if k.startswith("task_weight/") else k): v
                    for k, v in reported.items()}
        parts = {name: value.item() for name, value in outputs.items() if value.dim() == 0 and name != "loss"}
        return {"loss": loss.item(), **parts, "grad_norm": grad_norm.item(), **reported,
                **self.policy.training_scalars()}

    def fit(self) -> int:
        """Train to `num_steps` (resuming if possible). Whatever stops it (Ctrl-C, SIGTERM, an error, a
        failing callback) saves a checkpoint of the last complete step first, unless the disk is full."""
        self.resume()
        local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", self.world_size))
        torch.set_num_threads(max(1, training_threads(self.config.num_threads) // local_processes))
        if self.is_main:
            self.writer = SummaryWriter(str(self.out_dir / "tensorboard"), purge_step=self.step)
        model = self.training_model()
        model.train()
        bar = progress_bar(self.config.num_steps, "train", "step", self.progress and self.is_main, self.step)
        window: list[dict[str, float]] = []
        started, samples = time.perf_counter(), 0
        try:
            for batch in self._loader():
                with self._atomic_step():
                    window.append(self.train_step(model, batch))
                samples += len(batch[TASK_INDEX]) * self.world_size
                bar.update(1)
                if self.step % self.config.log_every == 0 or self.step == self.config.num_steps:
                    keys = dict.fromkeys(k for w in window for k in w)  # per-task figures: tasks present vary
                    scalars = {k: sum(w[k] for w in window if k in w) / sum(k in w for w in window) for k in keys}
                    scalars |= {"lr": self.lr_scheduler.get_last_lr()[0],
                                "samples_per_s": samples / (time.perf_counter() - started)}
                    self._log("train", scalars)
                    bar.set_postfix(loss=f"{scalars['loss']:.4f}", refresh=False)
                    window, started, samples = [], time.perf_counter(), 0
                self._after_step(model)
        except BaseException as error:
            self._save_on_the_way_out(error)
            raise
        finally:
            bar.close()
            if self.writer is not None:
                self.writer.close()
        return self.step

    def _save_on_the_way_out(self, error: BaseException) -> None:
        if not self.is_main or self.step == 0 or self.step == self.saved_step or isinstance(error, DiskFullError):
            return
        why = "interrupted" if isinstance(error, KeyboardInterrupt) else f"stopped by {type(error).__name__}"
        try:
            log.warning("%s at step %d; checkpoint saved in %s, re-run to resume", why, self.step,
                        self.save_checkpoint())
        except Exception:  # noqa: BLE001  the error that stopped training is the one to raise
            log.exception("%s at step %d, and the checkpoint could not be saved", why, self.step)

    def _after_step(self, model: torch.nn.Module) -> None:
        final = self.step == self.config.num_steps
        checkpointing = final or self.step % self.config.checkpoint_every == 0
        due = [fn for every, fn in self.callbacks if final or self.step % every == 0]
        if self.is_main:
            if checkpointing:
                self.save_checkpoint()
            for fn in due:
                self._log("eval", fn(self.step, self) or {})
                model.train()
        if checkpointing or due:
            wait_for_main_process()  # the other ranks wait on gloo, with no training collective pending

    def _log(self, prefix: str, scalars: dict[str, float]) -> None:
        if self.writer is None:
            return
        for name, value in scalars.items():
            self.writer.add_scalar(f"{prefix}/{name}", value, self.step)
        self.writer.flush()
