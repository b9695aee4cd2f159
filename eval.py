"""Evaluate a policy on a suite with parallel MuJoCo rollouts.

    python eval.py                                          # scripted experts on MT10, official protocol
    python eval.py env=metaworld_mt50 episodes_per_task=10  # fast mode: 10 goal variations per task
    python eval.py env=metaworld_mt1 env.task=push-v3 rollout.num_workers=2 rollout.videos_per_task=3
    python eval.py checkpoint=outputs/train/mt10_state/checkpoints/last      # a trained policy

Writes into `out_dir` (default outputs/eval/<suite>_<policy>): results.json, results.md,
episodes.jsonl (one line per finished episode) and videos/*.mp4. Interrupted runs keep what
finished; re-running the same command resumes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from envs.config import EnvConfig
from envs.experts import make_expert
from envs.results import EpisodeJournal, config_fingerprint, format_markdown, summarize, write_results
from envs.rollout import EpisodeRequest, RolloutConfig, RolloutEngine
from envs.suites import Suite, make_suite
from eval_metadata import run_metadata
from policies.acting import PolicyActor
from policies.checkpoint import WEIGHTS_FILE, load_policy
from policies.spec import PolicySpec
from schema import ChunkPolicy

log = logging.getLogger("eval")


@dataclass
class EvalConfig:
    env: EnvConfig = field(default_factory=EnvConfig)
    checkpoint: str | None = None  # a checkpoint directory written by train.py; None: the suite's scripted experts
    device: str = "auto"  # where a trained policy runs: auto (cuda if available, else cpu), cpu, cuda
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    episodes_per_task: int | None = None  # None: the official protocol (50 for Meta-World); fewer = fast mode
    out_dir: str | None = None  # None: outputs/eval/<suite>_<policy>
    progress: bool = True  # progress bar on stderr

    def __post_init__(self) -> None:
        if self.episodes_per_task is not None and self.episodes_per_task < 1:
            raise ValueError(f"episodes_per_task must be >= 1 (or null for the official protocol), "
                             f"got {self.episodes_per_task}")


ConfigStore.instance().store(name="eval_schema", node=EvalConfig)


def make_policy(cfg: EvalConfig, suite: Suite) -> ChunkPolicy:
    """The scripted experts, or a trained policy from its checkpoint directory, checked against the suite."""
    if cfg.checkpoint is None:
        return make_expert(suite.family, suite.tasks)
    if not Path(cfg.checkpoint).is_dir():
        raise FileNotFoundError(f"checkpoint={cfg.checkpoint!r} is not a directory (train.py writes "
                                "<out_dir>/checkpoints/last)")
    policy, _ = load_policy(cfg.checkpoint)
    check_policy_fits(policy.spec, suite)
    return PolicyActor(policy, suite.tasks, device=cfg.device, seed=cfg.rollout.seed)


def check_policy_fits(spec: PolicySpec, suite: Suite) -> None:
    """Raise ValueError when the policy's state, action or camera inputs do not match the suite's envs."""
    if (spec.state_dim, spec.action_dim) != (suite.state_dim, suite.action_dim):
        raise ValueError(f"the policy was trained for state dim {spec.state_dim} and action dim {spec.action_dim} "
                         f"({spec.tasks[0].suite}); {suite.name} has {suite.state_dim} and {suite.action_dim}")
    size = suite.config.image_size
    for camera, shape in spec.image_shapes.items():
        if camera not in suite.config.cameras or tuple(shape) != (3, size, size):
            raise ValueError(f"the policy needs camera {camera!r} at {shape[1]}x{shape[2]}; run with "
                             f"env.cameras={spec.cameras} env.image_size={shape[1]}")


def policy_label(checkpoint: str | None) -> str:
    """A short name for out_dir: 'expert', or the training run of a checkpoint (<run>_<checkpoint>)."""
    if checkpoint is None:
        return "expert"
    path = Path(checkpoint).resolve()
    return f"{path.parent.parent.name}_{path.name}"


def episode_requests(suite: Suite, episodes_per_task: int, done: set[tuple[str, int]]) -> list[EpisodeRequest]:
    """Task-major order, so workers keep reusing the env of one task."""
    return [EpisodeRequest(task, e) for task in suite.tasks for e in range(episodes_per_task)
            if (task.name, e) not in done]


def policy_identity(checkpoint: str | None) -> str | dict[str, str]:
    """What identifies the acting policy for resuming: 'expert', or the checkpoint's path and weights hash."""
    if checkpoint is None:
        return "expert"
    weights = Path(checkpoint) / WEIGHTS_FILE
    return {"checkpoint": str(Path(checkpoint).resolve()), "sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}


def default_out_dir(cfg: EvalConfig) -> Path:
    task = f"_{cfg.env.task}" if cfg.env.task else ""
    return Path("outputs") / "eval" / f"{cfg.env.suite}{task}_{policy_label(cfg.checkpoint)}"


@contextmanager
def policy_threads(num_workers: int) -> Iterator[None]:
    """Leave the cores the workers step on to them: torch threads spinning beside busy workers cost
    more than they compute (measured: 5x slower rollouts with 2 torch threads and 2 workers on 2 cores)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, min(previous, (os.cpu_count() or 1) - num_workers)))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def evaluate(cfg: EvalConfig, policy: ChunkPolicy | None = None) -> dict[str, Any]:
    """Run (or resume) an evaluation and write its result files; returns results.json's content.

    `policy` replaces the one `cfg.checkpoint` names (train.py passes the policy it is training).
    """
    suite = make_suite(cfg.env)
    episodes = cfg.episodes_per_task or suite.episodes_per_task
    if suite.goals is not None and episodes > suite.episodes_per_task:
        raise ValueError(f"episodes_per_task={episodes} but {suite.name} has {suite.episodes_per_task} "
                         "fixed goal variations per task; use env.goal_set=random for more")
    policy = policy or make_policy(cfg, suite)
    out_dir = Path(cfg.out_dir) if cfg.out_dir else default_out_dir(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
    identity = {"suite": suite.name, "tasks": [t.to_dict() for t in suite.tasks], "env": OmegaConf.to_container(
        OmegaConf.structured(cfg.env)), "policy": policy_identity(cfg.checkpoint),
        "n_obs_steps": policy.n_obs_steps, "n_action_steps": policy.n_action_steps, "seed": cfg.rollout.seed}
    title = f"{suite.name}: {policy_label(cfg.checkpoint)}"
    with EpisodeJournal.open(out_dir / "episodes.jsonl", config_fingerprint(identity)) as journal:
        requests = episode_requests(suite, episodes, journal.done_keys())
        if len(requests) < episodes * len(suite.tasks):
            log.info("resuming: %d of %d episodes already in %s", episodes * len(suite.tasks) - len(requests),
                     episodes * len(suite.tasks), journal.path)
        engine = RolloutEngine(suite, cfg.rollout, policy.n_obs_steps, policy.n_action_steps, out_dir, cfg.progress)
        complete = False
        try:
            with policy_threads(cfg.rollout.num_workers):
                engine.run(policy, requests, on_record=journal.append)
            complete = True
        finally:
            wanted = {(t.name, e) for t in suite.tasks for e in range(episodes)}
            records = [r for r in journal.records if (r.task, r.episode) in wanted]
            summary = summarize(records, suite.tasks)
            metadata = run_metadata(suite.protocol() | {"episodes_per_task": episodes}, cfg.rollout.seed,
                                    complete=complete, identity=identity)
            write_results(out_dir, summary, metadata, title)
            if not complete:
                log.warning("interrupted: %d episodes are saved in %s; re-run the same command to resume",
                            len(records), out_dir)
    print(format_markdown(summary, title))
    print(f"\nresults: {out_dir / 'results.json'}  videos: {out_dir / 'videos'}")
    return {"metadata": metadata, **summary}


def raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@hydra.main(config_path="configs", config_name="eval", version_base="1.3")
def main(cfg) -> None:
    signal.signal(signal.SIGTERM, raise_keyboard_interrupt)  # a kill keeps finished episodes, like Ctrl-C
    try:
        evaluate(OmegaConf.to_object(cfg))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
