"""Synthetic training runs as train.py lays them out, for tests of the comparison and the report pages:
config.yaml, final_eval/ (results.json, episodes.jsonl, videos/) and tensorboard/ event files.

Episode e of task t under seed s succeeds when u(s, t, e) < p[t], with u drawn from (s, t, e) alone: two
methods with the same p give the same episodes, and a method with a higher p succeeds on every goal the
other solves (the pairing a deterministic evaluation gives).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from torch.utils.tensorboard import SummaryWriter

from common.provenance import provenance
from common.schema import Task
from envs.results import JOURNAL_NAME, EpisodeRecord, summarize, write_results
from envs.video import write_mp4

TASKS = ["reach-v3", "push-v3", "pick-place-v3", "door-open-v3"]
STEPS, LOG_EVERY, STEP_TIME_S = 400, 50, 0.01  # training steps, logging interval, seconds per step in the logs
SAMPLES_PER_S = [900.0, 1100.0, 1000.0, 950.0, 1050.0, 1000.0, 980.0, 1020.0]  # one per logged window


def goal_difficulty(seed: int, task: int, episode: int) -> float:
    return float(np.random.default_rng([seed, task, episode, 12345]).random())


def frames(hue: int, n: int = 12, size: int = 48) -> np.ndarray:
    """(n, size, size, 3) uint8: a bright square moving over a coloured gradient."""
    y, x = np.mgrid[0:size, 0:size]
    out = np.zeros((n, size, size, 3), np.uint8)
    for i in range(n):
        out[i, ..., 0] = (x * 4 + hue) % 256
        out[i, ..., 1] = y * 4 % 256
        out[i, ..., 2] = hue % 256
        out[i, 8:20, 2 + 3 * i:14 + 3 * i] = 255
    return out


def write_tensorboard(folder: Path, final_loss: float, success: float) -> None:
    writer = SummaryWriter(str(folder))
    start = time.time()
    for k, step in enumerate(range(LOG_EVERY, STEPS + 1, LOG_EVERY)):
        wall = start + step * STEP_TIME_S
        loss = final_loss * (STEPS / step) ** 0.7
        writer.add_scalar("train/loss", loss, step, walltime=wall)
        for t, task in enumerate(TASKS):
            writer.add_scalar(f"train/loss/{task}", loss * (0.6 + 0.3 * t), step, walltime=wall)
        writer.add_scalar("train/samples_per_s", SAMPLES_PER_S[k], step, walltime=wall)
        writer.add_scalar("train/lr", 1e-4, step, walltime=wall)
        if step % 200 == 0:
            writer.add_scalar("eval/success_rate", success * step / STEPS, step, walltime=wall)
    writer.close()


def write_run(root: Path, method: str | None, seed: int, success: list[float], episodes: int = 20,
              eval_seed: int = 0, videos: bool = True, tensorboard: bool = True) -> Path:
    """A training run folder at `root`; `success[t]` is task t's success probability."""
    root.mkdir(parents=True, exist_ok=True)
    trainer = f"  seed: {seed}\n" + (f"  multitask:\n    method: {method}\n" if method else "")
    (root / "config.yaml").write_text(f"name: {root.name}\ntrainer:\n{trainer}")
    out = root / "final_eval"
    out.mkdir(exist_ok=True)
    tasks = [Task(suite="metaworld_mt10", name=name, index=i, instruction=f"do {name} <now>")
             for i, name in enumerate(TASKS)]
    records = []
    for t, task in enumerate(TASKS):
        for e in range(episodes):
            ok = goal_difficulty(seed, t, e) < success[t]
            video = None
            if e == 0 and videos:
                video = f"videos/{task}_ep000_{'success' if ok else 'failure'}.mp4"
                write_mp4(out / video, frames(hue=40 * t + 7 * seed + sum(map(ord, method or ""))))
            records.append(EpisodeRecord(task, t, e, "ok", ok, 100 if ok else 500, reward=1.0, video=video))
    journal = [json.dumps({"fingerprint": "synthetic"})] + [json.dumps(r.to_dict()) for r in records]
    (out / JOURNAL_NAME).write_text("\n".join(journal) + "\n")
    protocol = {"suite": "metaworld_mt10", "episodes_per_task": episodes, "max_episode_steps": 500,
                "goal_set": "official", "goal_seed": 0, "terminate_on_success": True, "success": "synthetic"}
    metadata = provenance(protocol=protocol, seed=eval_seed, complete=True,
                          identity={"policy": {"sha256": f"{method}-{seed}"}})
    write_results(out, summarize(records, tasks), metadata, f"synthetic {method} seed {seed}")
    if tensorboard:
        final_loss = 0.02 + 0.005 * seed + 0.001 * (sum(map(ord, method or "")) % 13)
        write_tensorboard(root / "tensorboard", final_loss=final_loss, success=float(np.mean(success)))
    return root


def records_of(run: Path) -> list[EpisodeRecord]:
    lines = (run / "final_eval" / JOURNAL_NAME).read_text().splitlines()[1:]
    return [EpisodeRecord.from_dict(json.loads(line)) for line in lines]
