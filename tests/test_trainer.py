"""The shared training loop: deterministic batches, exact resume, DDP on CPU (gloo), bf16 autocast."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from torch.utils.data import Dataset

from common.atomic import DiskFullError
from common.schema import ACTION, ACTION_IS_PAD, OBS_STATE, TASK_INDEX, TASK_INSTRUCTION
from policies.checkpoint import CheckpointError, read_checkpoint_record
from policies.registry import make_policy
from tests.policies.conftest import ACTION_DIM, STATE_DIM, TEXT_DIM, tiny_config, tiny_spec
from training.config import OptimConfig, TrainerConfig
from training.sampler import StepBatchSampler
from training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]


class RandomWindows(Dataset):
    """A fixed set of training windows with the keys and shapes of MultitaskSequenceDataset."""

    def __init__(self, n: int = 40, horizon: int = 8):
        generator = torch.Generator().manual_seed(0)
        self.state = torch.randn(n, 2, STATE_DIM, generator=generator)
        self.action = torch.rand(n, horizon, ACTION_DIM, generator=generator) * 2 - 1
        self.task = self.task_of_sample = torch.arange(n) % 3

    def __len__(self) -> int:
        return len(self.state)

    def __getitem__(self, i: int) -> dict:
        return {OBS_STATE: self.state[i], ACTION: self.action[i], ACTION_IS_PAD: torch.zeros(8, dtype=torch.bool),
                TASK_INDEX: self.task[i], TASK_INSTRUCTION: f"do task number {int(self.task[i])}"}


def tiny_policy(name: str = "diffusion", seed: int = 0):
    torch.manual_seed(seed)
    policy = make_policy(tiny_config(name), tiny_spec())
    policy.conditioning.set_text_table(torch.randn(3, TEXT_DIM, generator=torch.Generator().manual_seed(1)))
    return policy


def trainer_config(**fields) -> TrainerConfig:
    return TrainerConfig(**({"num_steps": 12, "batch_size": 4, "checkpoint_every": 100, "log_every": 3,
                             "device": "cpu", "optim": OptimConfig(lr=1e-3, warmup_steps=3)} | fields))


def test_batches_depend_only_on_seed_and_step():
    full = list(StepBatchSampler(50, 8, num_steps=20, seed=3))
    resumed = list(StepBatchSampler(50, 8, num_steps=20, seed=3, start_step=13))
    assert resumed == full[13:]
    assert len({i for batch in full[:6] for i in batch}) == 48  # an epoch: 6 batches without repeats
    shards = [list(StepBatchSampler(50, 4, num_steps=20, seed=3, rank=r, world_size=2)) for r in range(2)]
    for step in range(20):  # two ranks of batch 4 split the single-process batch of 8
        assert sorted(shards[0][step] + shards[1][step]) == sorted(full[step])


def assert_same_run(expected: Trainer, actual: Trainer) -> None:
    for name, tensor in expected.policy.state_dict().items():
        torch.testing.assert_close(actual.policy.state_dict()[name], tensor, rtol=0, atol=0, msg=name)
    for name, tensor in expected.acting_state_dict().items():  # the EMA weights too
        torch.testing.assert_close(actual.acting_state_dict()[name], tensor, rtol=0, atol=0, msg=name)
    assert expected.lr_scheduler.get_last_lr() == actual.lr_scheduler.get_last_lr()


@pytest.mark.parametrize("stop", [KeyboardInterrupt, RuntimeError])
def test_a_run_stopped_in_a_callback_saves_first_and_resumes_to_the_same_weights(tmp_path, stop):
    """Ctrl-C, or an evaluation that crashes, at a step that is not a checkpoint step (every 100)."""
    straight = Trainer(trainer_config(), tiny_policy(), RandomWindows(), tmp_path / "straight", progress=False)
    assert straight.fit() == 12

    def fail(step: int, trainer: Trainer) -> None:
        raise stop("evaluation failed")

    first = Trainer(trainer_config(), tiny_policy(), RandomWindows(), tmp_path / "resumed", progress=False)
    first.add_callback(5, fail)
    with pytest.raises(stop):
        first.fit()
    last = tmp_path / "resumed" / "checkpoints" / "last"
    assert read_checkpoint_record(last)["metadata"]["step"] == 5 and (last / "training_state.pt").exists()
    second = Trainer(trainer_config(), tiny_policy(seed=7), RandomWindows(), tmp_path / "resumed", progress=False)
    assert second.fit() == 12
    assert_same_run(straight, second)


KILL_IN_THE_LAST_RENAME = """
import json, os, sys
sys.path[:0] = [{root!r}]
import common.atomic
from tests.test_trainer import RandomWindows, Trainer, tiny_policy, trainer_config

real_replace = os.replace

def replace(source, target):
    if str(source).endswith(".last.partial"):
        record = json.loads(open(os.path.join(source, "config.json")).read())
        if record["metadata"]["step"] == 10:
            os._exit(9)  # killed after the old checkpoint was moved aside, before the new one is moved in
    real_replace(source, target)

common.atomic.os.replace = replace
Trainer(trainer_config(checkpoint_every=5), tiny_policy(), RandomWindows(), {out!r}, progress=False).fit()
"""


def test_a_kill_between_the_renames_of_a_checkpoint_is_recovered(tmp_path):
    straight = Trainer(trainer_config(), tiny_policy(), RandomWindows(), tmp_path / "straight", progress=False)
    straight.fit()
    out = tmp_path / "killed"
    script = KILL_IN_THE_LAST_RENAME.format(root=str(ROOT), out=str(out))
    assert subprocess.run([sys.executable, "-c", script], timeout=300).returncode == 9
    checkpoints = out / "checkpoints"
    assert not (checkpoints / "last").exists()
    assert (checkpoints / ".last.old").is_dir() and (checkpoints / ".last.partial").is_dir()
    resumed = Trainer(trainer_config(checkpoint_every=5), tiny_policy(seed=3), RandomWindows(), out, progress=False)
    assert resumed.resume() and resumed.step == 10  # the complete new checkpoint, not the older step 5
    assert resumed.fit() == 12
    assert_same_run(straight, resumed)
    assert not (checkpoints / ".last.old").exists() and not (checkpoints / ".last.partial").exists()


def test_earlier_checkpoints_without_a_training_state_are_not_silently_overwritten(tmp_path):
    Trainer(trainer_config(checkpoint_every=5), tiny_policy(), RandomWindows(), tmp_path, progress=False).fit()
    shutil.rmtree(tmp_path / "checkpoints" / "last")
    again = Trainer(trainer_config(checkpoint_every=5), tiny_policy(), RandomWindows(), tmp_path, progress=False)
    with pytest.raises(CheckpointError, match=r"step_0000005.*no training state to resume"):
        again.fit()


def test_a_full_disk_names_the_last_good_checkpoint_and_keeps_it(tmp_path, monkeypatch):
    trainer = Trainer(trainer_config(checkpoint_every=5), tiny_policy(), RandomWindows(), tmp_path, progress=False)
    real_write_bytes = Path.write_bytes

    def write_bytes(path: Path, data: bytes) -> int:
        if path.name == "training_state.pt" and trainer.step == 10:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write_bytes(path, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    with pytest.raises(DiskFullError, match=r"disk full: cannot write .*last.*checkpoint of step 10; the last good "
                                            r"checkpoint is .*checkpoints/last \(step 5\)"):
        trainer.fit()
    assert read_checkpoint_record(tmp_path / "checkpoints" / "last")["metadata"]["step"] == 5
    assert not (tmp_path / "checkpoints" / ".last.partial").exists()


@pytest.mark.parametrize("field", ["checkpoint_every", "log_every", "num_steps", "batch_size"])
def test_zero_step_counts_are_refused_at_configuration(field):
    with pytest.raises(ValueError, match=f"trainer.{field} must be >= 1"):
        trainer_config(**{field: 0})


def test_training_writes_checkpoints_and_tensorboard_logs(tmp_path):
    trainer = Trainer(trainer_config(checkpoint_every=5), tiny_policy(), RandomWindows(), tmp_path, progress=False)
    calls = []
    trainer.add_callback(4, lambda step, t: calls.append(step) or {"success_rate": 0.5})
    trainer.fit()
    checkpoints = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert checkpoints == ["last", "step_0000005", "step_0000010", "step_0000012"]
    assert calls == [4, 8, 12]
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert {"train/loss", "train/lr", "train/grad_norm", "train/samples_per_s", "eval/success_rate"} <= \
        set(events.Tags()["scalars"])
    losses = [e.value for e in events.Scalars("train/loss")]
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))


@pytest.mark.parametrize("mode, expected", [("bf16", torch.bfloat16), ("no", torch.float32)])
def test_the_training_step_multiplies_in_the_precision_asked_for(tmp_path, mode, expected):
    """What the training step's linear layers actually compute in, seen from inside the model."""
    policy = tiny_policy("transformer")
    seen: set[torch.dtype] = set()
    for module in policy.modules():
        if isinstance(module, torch.nn.Linear):
            module.register_forward_hook(lambda module, inputs, output: seen.add(output.dtype))
    trainer = Trainer(trainer_config(num_steps=3, mixed_precision=mode), policy, RandomWindows(), tmp_path,
                      progress=False)
    assert trainer.fit() == 3
    assert seen == {expected}
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in trainer.policy.parameters())


def test_task_balanced_training_draws_every_task_equally(tmp_path, monkeypatch):
    """The batches the training loop actually trains on, from a dataset where one task has 10x the windows."""
    from datasets.config import DatasetConfig
    from datasets.sampling import sample_weights
    from datasets.sequence_dataset import MultitaskSequenceDataset
    from tests.datasets.conftest import write_task_file

    write_task_file(tmp_path / "big.hdf5", "big", [60] * 10, state_dim=STATE_DIM, action_dim=ACTION_DIM)
    write_task_file(tmp_path / "small.hdf5", "small", [60], state_dim=STATE_DIM, action_dim=ACTION_DIM, seed=1)
    dataset = MultitaskSequenceDataset(DatasetConfig(path=str(tmp_path), horizon=8, n_action_steps=4))
    assert np.bincount(dataset.task_of_sample).tolist() == [560, 56]
    trainer = Trainer(trainer_config(num_steps=40, batch_size=32), tiny_policy("transformer"), dataset,
                      tmp_path / "run", sample_weights(dataset, task_balanced=True), progress=False)
    drawn, train_step = [], trainer.train_step
    monkeypatch.setattr(trainer, "train_step", lambda model, batch: drawn.append(batch[TASK_INDEX]) or
                        train_step(model, batch))
    trainer.fit()
    assert len(drawn) == 40
    share_of_small = torch.cat(drawn).eq(1).float().mean().item()
    assert 0.42 < share_of_small < 0.58  # uniform draws would give it 56 / 616 = 0.09


def test_a_non_finite_loss_stops_training_with_a_clear_error(tmp_path):
    dataset = RandomWindows()
    dataset.state[:] = float("nan")
    trainer = Trainer(trainer_config(), tiny_policy("transformer"), dataset, tmp_path, progress=False)
    with pytest.raises(FloatingPointError, match="loss is nan at step 0"):
        trainer.fit()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    trainer = Trainer(trainer_config(num_steps=3, batch_size=4), tiny_policy("transformer"), RandomWindows(),
                      out_dir, progress=False)
    trainer.fit()
    torch.save(trainer.policy.state_dict(), Path(out_dir) / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_two_process_ddp_step_on_cpu_matches_one_process_with_the_global_batch(tmp_path):
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    single = Trainer(trainer_config(num_steps=3, batch_size=8), tiny_policy("transformer"), RandomWindows(),
                     tmp_path / "single", progress=False)
    single.fit()
    initial = tiny_policy("transformer").state_dict()
    for name, tensor in single.policy.state_dict().items():
        torch.testing.assert_close(ranks[0][name], ranks[1][name], rtol=0, atol=0, msg=name)  # replicas agree
        # = the global batch in one process, up to summation order (which Adam's normalisation amplifies
        # for near-zero gradients: ~2e-5 seen, against ~1e-3 moved per weight in 3 steps)
        torch.testing.assert_close(ranks[0][name], tensor, rtol=1e-3, atol=1e-4, msg=name)
    assert max((initial[n] - t).abs().max().item() for n, t in ranks[0].items() if t.is_floating_point()) > 5e-4
    assert (tmp_path / "checkpoints" / "last").is_dir()  # rank 0 wrote the checkpoint


def _ddp_slow_eval_worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    config = trainer_config(num_steps=3, batch_size=4, distributed_timeout_s=2.0)
    trainer = Trainer(config, tiny_policy("transformer"), RandomWindows(), out_dir, progress=False)
    evaluated = []
    trainer.add_callback(2, lambda step, t: time.sleep(5 if step == 2 else 0) or evaluated.append(step))
    trainer.fit()
    (Path(out_dir) / f"rank{rank}.txt").write_text(f"{trainer.step} {evaluated}")
    torch.distributed.destroy_process_group()


def test_ranks_wait_for_an_evaluation_longer_than_the_collective_timeout(tmp_path):
    """Rank 0 evaluates for longer than a training collective may wait; the other rank must not time out."""
    mp.spawn(_ddp_slow_eval_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    assert (tmp_path / "rank0.txt").read_text() == "3 [2, 3]"  # 5 s at step 2: longer than the 2 s timeout
    assert (tmp_path / "rank1.txt").read_text() == "3 []"  # callbacks run on rank 0 only


def test_a_signal_in_the_middle_of_a_step_takes_effect_after_it(tmp_path, monkeypatch):
    """SIGTERM arriving between optimizer.step and the scheduler/EMA update must not tear the step."""
    straight = Trainer(trainer_config(), tiny_policy(), RandomWindows(), tmp_path / "straight", progress=False)
    straight.fit()
    interrupted = Trainer(trainer_config(), tiny_policy(), RandomWindows(), tmp_path / "resumed", progress=False)
    optimizer_step = interrupted.optimizer.step

    def step_then_signal(*args, **kwargs):
        result = optimizer_step(*args, **kwargs)
        if interrupted.step == 6:
            os.kill(os.getpid(), signal.SIGTERM)
        return result

    monkeypatch.setattr(interrupted.optimizer, "step", step_then_signal)
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: (_ for _ in ()).throw(KeyboardInterrupt))
    try:
        with pytest.raises(KeyboardInterrupt):
            interrupted.fit()
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert interrupted.step == 7  # the step in hand was completed, then the run stopped and saved
    resumed = Trainer(trainer_config(), tiny_policy(seed=3), RandomWindows(), tmp_path / "resumed", progress=False)
    resumed.fit()
    for name, tensor in straight.policy.state_dict().items():
        torch.testing.assert_close(resumed.policy.state_dict()[name], tensor, rtol=0, atol=0, msg=name)


def test_resuming_into_a_run_of_another_policy_is_refused(tmp_path):
    Trainer(trainer_config(num_steps=2), tiny_policy(), RandomWindows(), tmp_path, progress=False).fit()
    other = Trainer(trainer_config(num_steps=4), tiny_policy("transformer"), RandomWindows(), tmp_path,
                    progress=False)
    with pytest.raises(CheckpointError, match="holds a different policy"):
        other.fit()
