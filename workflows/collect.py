"""Collection: the suite's scripted experts run by the rollout engine, one HDF5 file per task (robomimic /
LIBERO layout, `datasets.layout`). `python collect.py` runs it; train.py calls it for missing demos.

    files = collect(CollectConfig(env=EnvConfig(suite="metaworld_mt10", goal_set="random")))

Writes <out_dir>/<task>.hdf5 (default out_dir: data/demos/<suite>). Goals are freshly sampled
per episode from a seed (env.goal_set=random; `official` uses the 50 evaluation goals).
Files appear only when complete; re-running the same command skips finished tasks. A task that none of its
first episodes_per_task tries solved is given up (retry_unsolved=true retries it) and gets no file but a
record, <out_dir>/<task>.no_demos.json, so a re-run (or train.py's resume) does not spend those tries again;
delete the record to retry.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from common.atomic import ensure_folder, write_text
from common.provenance import package_versions
from common.schema import Task
from datasets.layout import DATA, problem_info
from datasets.writer import write_task_file
from envs.config import EnvConfig, GoalSet
from envs.registry import Suite, make_suite
from envs.results import EpisodeRecord
from envs.rollout import EpisodeRequest, RolloutConfig, make_engine

log = logging.getLogger("collect")


class Keep(StrEnum):
    success = "success"  # keep successful episodes only, retrying failed ones with new goals
    all = "all"  # keep every episode


@dataclass
class CollectConfig:
    env: EnvConfig = field(default_factory=lambda: EnvConfig(goal_set=GoalSet.random))
    rollout: RolloutConfig = field(default_factory=lambda: RolloutConfig(videos_per_task=0))
    episodes_per_task: int = 50  # demonstrations written per task
    keep: Keep = Keep.success  # success or all
    action_noise: float = 0.0  # std of Gaussian noise on executed actions; the clean expert action is the label
    max_attempts_factor: float = 3.0  # keep=success: give up on a task after this many x episodes_per_task tries
    retry_unsolved: bool = False  # keep=success: retry a task that none of its first episodes_per_task tries
    # solved (off: give it up then, as libero_10's mug-in-microwave expert spent 40 more full-length failures)
    out_dir: str | None = None  # None: data/demos/<suite>
    progress: bool = True

    def __post_init__(self) -> None:
        if self.episodes_per_task < 1:
            raise ValueError(f"episodes_per_task must be >= 1, got {self.episodes_per_task}")


ConfigStore.instance().store(name="collect_schema", node=CollectConfig)


def task_file(out_dir: Path, task: Task) -> Path:
    """A task's demonstration file: an official LIBERO ``<task>_demo.hdf5`` already in `out_dir`,
    else ``<task>.hdf5``, the file collect.py writes."""
    official = out_dir / f"{task.name}_demo.hdf5"
    return official if official.exists() else out_dir / f"{task.name}.hdf5"


def no_demos_record(out_dir: Path, task: Task) -> Path:
    """Where collection records that the task's expert succeeded in none of its attempts."""
    return out_dir / f"{task.name}.no_demos.json"


def collection_done(out_dir: Path, task: Task) -> bool:
    """The task has its demonstration file, or a record that its expert produced none."""
    return task_file(out_dir, task).exists() or no_demos_record(out_dir, task).exists()


def task_attrs(suite: Suite, task: Task, cfg: CollectConfig, attempts: int, successes: int) -> dict[str, Any]:
    """The ``data`` attributes of one task file: who, what, how it was collected."""
    return {
        "task": task.name, "suite": suite.name, "instruction": task.instruction, "task_index": task.index,
        "problem_info": problem_info(task.instruction, task.name),
        "env_args": {"suite": suite.name, "family": suite.family,
                     "env": OmegaConf.to_container(OmegaConf.structured(cfg.env))},
        "packages": package_versions(),
        "collection": {"policy": "expert", "keep": str(cfg.keep), "action_noise": cfg.action_noise,
                       "seed": cfg.rollout.seed, "goal_set": str(cfg.env.goal_set), "attempts": attempts,
                       "successes": successes, "max_episode_steps": suite.max_episode_steps},
    }


class TaskCollector:
    """Keeps each task's episodes until it has enough, then writes the task's file."""

    def __init__(self, suite: Suite, cfg: CollectConfig, out_dir: Path, tasks: list[Task]):
        self.suite, self.cfg, self.out_dir = suite, cfg, out_dir
        self.kept: dict[str, list[dict[str, Any]]] = {t.name: [] for t in tasks}
        self.attempts: dict[str, int] = defaultdict(int)
        self.successes: dict[str, int] = defaultdict(int)
        self.written: dict[str, Path] = {}

    def needed(self, task: Task) -> int:
        """Demos still to collect: none once written, or once given up unsolved (unless retry_unsolved)."""
        if task.name in self.written or (self.unsolved(task) and not self.cfg.retry_unsolved):
            return 0
        return self.cfg.episodes_per_task - len(self.kept[task.name])

    def unsolved(self, task: Task) -> bool:
        """keep=success and none of at least episodes_per_task tries succeeded."""
        return (self.cfg.keep == Keep.success and self.successes[task.name] == 0
                and self.attempts[task.name] >= self.cfg.episodes_per_task)

    def add(self, record: EpisodeRecord, trajectory: dict[str, Any]) -> None:
        self.successes[record.task] += int(record.success)
        if self.cfg.keep == Keep.all or record.success:
            attrs = {"episode": record.episode, "success": record.success}
            self.kept[record.task].append(dict(trajectory, attrs=attrs))
        if len(self.kept[record.task]) == self.cfg.episodes_per_task:
            self.write(self.suite.task(record.task))

    def write(self, task: Task) -> None:
        episodes = sorted(self.kept[task.name], key=lambda e: e["attrs"]["episode"])  # order-free of workers
        attrs = task_attrs(self.suite, task, self.cfg, self.attempts[task.name], self.successes[task.name])
        self.written[task.name] = write_task_file(task_file(self.out_dir, task), episodes, attrs,
                                                  self.suite.state_layout)
        self.kept[task.name] = []  # written: free the arrays
        log.info("%s: %d demos -> %s", task.name, len(episodes), self.written[task.name])


def finished_tasks(out_dir: Path, tasks: list[Task]) -> list[Task]:
    """Tasks whose file is already complete (a file only gets its final name once written), or whose expert
    gave no demo in an earlier run (its record is named in the log)."""
    done = []
    for task in tasks:
        path = task_file(out_dir, task)
        record = no_demos_record(out_dir, task)
        if record.exists() and not path.exists():
            attempts = json.loads(record.read_text()).get("attempts", "?")
            log.warning("%s: skipped, its expert gave no demo in %s attempts of an earlier run (%s; delete it to "
                        "retry)", task.name, attempts, record)
            done.append(task)
            continue
        if path.exists():
            try:
                with h5py.File(path, "r") as file:
                    file[DATA].attrs["total"]
            except (OSError, KeyError) as error:
                raise ValueError(f"{path} exists but is not a complete demo file ({error}); delete it and "
                                 "re-run") from error
            done.append(task)
    return done


def collect(cfg: CollectConfig) -> dict[str, Path]:
    """Collect demonstrations for every task of the suite; returns task name -> file."""
    suite = make_suite(cfg.env)
    default = Path("data") / "demos" / suite.name.replace("/", "_")
    out_dir = ensure_folder(Path(cfg.out_dir) if cfg.out_dir else default, "out_dir")
    attempts = cfg.episodes_per_task * cfg.max_attempts_factor
    if cfg.env.goal_set == GoalSet.official and attempts > suite.episodes_per_task:
        log.warning("official goals: at most %d attempts per task", suite.episodes_per_task)
    done = finished_tasks(out_dir, suite.tasks)
    if done:
        log.info("resuming: %d of %d tasks already in %s", len(done), len(suite.tasks), out_dir)
    todo = [t for t in suite.tasks if t not in done]
    if todo:
        collect_tasks(suite, cfg, out_dir, todo)
    files = {t.name: task_file(out_dir, t) for t in suite.tasks if task_file(out_dir, t).exists()}
    print(f"{len(files)} task files in {out_dir}")
    return files


def collect_tasks(suite: Suite, cfg: CollectConfig, out_dir: Path, todo: list[Task]) -> None:
    """Run the expert on `todo` in retry rounds until each task has its demos or its attempts run out."""
    collector = TaskCollector(suite, cfg, out_dir, todo)
    policy = suite.make_expert()
    engine = make_engine(suite, cfg.rollout, policy, out_dir, cfg.progress, record_trajectories=True,
                         action_noise=cfg.action_noise)
    limit = int(np.ceil(cfg.episodes_per_task * cfg.max_attempts_factor))
    if suite.goals is not None:
        limit = min(limit, suite.episodes_per_task)
    with engine:  # the workers and their envs stay up across the retry rounds
        while True:
            requests = []
            for task in todo:
                start = collector.attempts[task.name]
                count = min(collector.needed(task), limit - start)
                requests += [EpisodeRequest(task, e) for e in range(start, start + count)]
                collector.attempts[task.name] += count
            if not requests:
                break
            engine.run(requests, on_record=lambda record: None, on_trajectory=collector.add)
    for task in todo:
        if task.name not in collector.written:
            kept = len(collector.kept[task.name])
            log.warning("%s: only %d of %d demos after %d attempts%s", task.name, kept, cfg.episodes_per_task,
                        collector.attempts[task.name],
                        "; none succeeded (retry_unsolved=true retries such a task)" if not kept else "")
            if kept:
                collector.write(task)
            else:
                attrs = task_attrs(suite, task, cfg, collector.attempts[task.name], 0)
                record = {"task": task.name, "suite": suite.name, **attrs["collection"]}
                write_text(no_demos_record(out_dir, task), json.dumps(record, indent=2) + "\n")
