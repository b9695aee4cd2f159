"""Cost of one training step under each multitask method, against plain summation, at 10 and 50 tasks.

    python -m bench.multitask_cost                  # every method, 10 and 50 tasks, ~5 s each
    python -m bench.multitask_cost --tasks 10 --methods sum upgrad famo --seconds 10
    python -m bench.multitask_cost --whole-batch upgrad pcgrad   # these also per_task_forward=false

The mt10_state policy (diffusion, UNet (64, 128), 1.79M parameters) on random state batches of 128 windows,
task-stratified over all the tasks (so every task has a loss in every batch), through the real Trainer's
train_step (forward, the method's backward, AdamW, EMA); gradient methods run one pass per task
(`per_task_forward`, the default) and, for the `--whole-batch` ones, also torchjd's Jacobian over the whole
batch's graph. Figures: ms per step and the ratio to `sum`,
measured one after the other in one process. Writes bench/results/multitask_cost.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from bench.common import save
from bench.policy_speed import random_batch
from common.schema import TASK_INDEX, Task
from policies.denoisers import UNetConfig
from policies.diffusion import DiffusionConfig
from policies.registry import make_policy
from policies.spec import PolicySpec
from training.config import TrainerConfig
from training.multitask import METHODS, MultitaskConfig
from training.trainer import Trainer


class Batches(torch.utils.data.Dataset):
    """A dataset the Trainer can be built on (its batches are fed to train_step directly)."""

    def __init__(self, num_tasks: int):
        self.task_of_sample = torch.arange(num_tasks)

    def __len__(self) -> int:
        return len(self.task_of_sample)


def step_ms(method: str, num_tasks: int, seconds: float, per_task_forward: bool = True) -> float:
    torch.manual_seed(0)
    tasks = [Task("bench", f"task-{i}", i, f"instruction {i}") for i in range(num_tasks)]
    policy = make_policy(DiffusionConfig(unet=UNetConfig(down_dims=[64, 128])), PolicySpec(39, 4, tasks))
    config = TrainerConfig(num_steps=10**6, batch_size=128, device="cpu", num_threads=torch.get_num_threads(),
                           multitask=MultitaskConfig(method=method, tasks_per_batch=num_tasks,
                                                     per_task_forward=per_task_forward))
    with tempfile.TemporaryDirectory() as out_dir:
        trainer = Trainer(config, policy, Batches(num_tasks), out_dir, progress=False)
        batch = random_batch(policy.spec, 128)
        batch[TASK_INDEX] = torch.arange(128) % num_tasks
        batch["task.instruction"] = [t.instruction for t in tasks] * (128 // num_tasks + 1)
        steps, started = -2, 0.0
        while steps < 3 or time.perf_counter() - started < seconds:
            if steps == 0:
                started = time.perf_counter()
            trainer.train_step(policy, batch)
            steps += 1
        return (time.perf_counter() - started) / steps * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--methods", nargs="+", default=METHODS.names())
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per method (after 2 warm-up steps)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--whole-batch", nargs="*", default=["upgrad", "pcgrad"],
                        help="gradient methods also timed with trainer.multitask.per_task_forward=false")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    figures = {}
    for num_tasks in args.tasks:
        rows = {method: step_ms(method, num_tasks, args.seconds) for method in ["sum"] + [m for m in args.methods
                                                                                         if m != "sum"]}
        for method in [m for m in args.whole_batch if m in rows]:  # torchjd's Jacobian over the whole batch
            rows[f"{method} (whole batch)"] = step_ms(method, num_tasks, args.seconds, per_task_forward=False)
        figures[f"{num_tasks}_tasks"] = {m: {"ms_per_step": round(ms, 1), "vs_sum": round(ms / rows["sum"], 2)}
                                         for m, ms in rows.items()}
        for method, ms in rows.items():
            print(f"{num_tasks:3d} tasks  {method:22s} {ms:8.1f} ms/step  {ms / rows['sum']:5.2f}x sum")
    save("multitask_cost", {"threads": args.threads, "batch_size": 128, "seconds": args.seconds, "results": figures})


if __name__ == "__main__":
    main()
