"""Evaluation: a policy (scripted experts, a checkpoint, or the weights being trained) on a suite under its
protocol, run by the rollout engine, with a resume journal and result files. `python eval.py` runs it.

    results = evaluate(EvalConfig(env=EnvConfig(suite="metaworld_mt10"), checkpoint="outputs/.../last"))

Writes into `out_dir` (default outputs/eval/<suite>_<policy>): results.json, results.md, results.html,
episodes.jsonl (one line per finished episode), config.yaml and videos/*.mp4. Interrupted runs keep
what finished; re-running the same command resumes. A learned policy gives the same episodes for any
number of workers and slots (policies/acting.py says how).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from common.atomic import DiskFullError, ensure_folder, write_text
from common.provenance import provenance
from common.schema import ChunkPolicy, Task
from envs.config import EnvConfig
from envs.registry import Suite, make_suite
from envs.report_html import write_results_html
from envs.results import EpisodeJournal, config_fingerprint, format_markdown, summarize, write_results
from envs.rollout import EpisodeRequest, RolloutConfig, make_engine
from policies.acting import PolicyActor
from policies.base import MultitaskPolicy
from policies.checkpoint import WEIGHTS_FILE, load_policy
from policies.spec import PolicySpec

log = logging.getLogger("eval")
UNTRAINED_TASKS = "tasks_without_demonstrations"  # in checkpoint metadata and results: {suite: [names]}


@dataclass
class ActingConfig:
    """How a trained policy acts, where it differs from its checkpoint: cheaper acting at some cost in success
    (measure it: docs/engine.md). Part of the run's identity in results.json when set."""

    n_action_steps: int | None = None  # actions executed per predicted chunk (1..horizon); None: the checkpoint's
    num_inference_steps: int | None = None  # diffusion: DDIM steps per chunk; None: the checkpoint's

    def apply(self, policy: MultitaskPolicy) -> dict[str, int]:
        """Set these on `policy` (checked against it); returns what was set, for the run's identity."""
        changed: dict[str, int] = {}
        if self.n_action_steps is not None:
            if not 1 <= self.n_action_steps <= policy.horizon:
                raise ValueError(f"acting.n_action_steps={self.n_action_steps}: the policy predicts chunks of "
                                 f"{policy.horizon} actions (horizon); choose 1..{policy.horizon}")
            policy.n_action_steps = changed["n_action_steps"] = self.n_action_steps
        if self.num_inference_steps is not None:
            if not hasattr(policy.config, "num_inference_steps"):
                raise ValueError(f"acting.num_inference_steps: a {type(policy).__name__} takes no denoising steps")
            policy.config = dataclasses.replace(policy.config, num_inference_steps=self.num_inference_steps)
            changed["num_inference_steps"] = self.num_inference_steps  # the config's own check ran above
        return changed


@dataclass
class EvalConfig:
    env: EnvConfig = field(default_factory=EnvConfig)
    checkpoint: str | None = None  # a checkpoint directory written by train.py; None: the suite's scripted experts
    acting: ActingConfig = field(default_factory=ActingConfig)  # overrides of the checkpoint's acting settings
    device: str = "auto"  # where a trained policy runs: auto (cuda if available, else cpu), cpu, cuda
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    episodes_per_task: int | None = None  # None: the official protocol (50 for Meta-World); fewer = fast mode
    tasks: list[str] | None = None  # evaluate these of the suite's tasks only, by name; None: every task
    out_dir: str | None = None  # None: outputs/eval/<suite>_<policy>
    progress: bool = True  # progress bar on stderr

    def __post_init__(self) -> None:
        if self.episodes_per_task is not None and self.episodes_per_task < 1:
            raise ValueError(f"episodes_per_task must be >= 1 (or null for the official protocol), "
                             f"got {self.episodes_per_task}")
        if self.tasks is not None and not self.tasks:
            raise ValueError("tasks=[] evaluates nothing; name some of the suite's tasks, or null for all")


ConfigStore.instance().store(name="eval_schema", node=EvalConfig)


@dataclass
class PolicyUnderTest:
    """The policy an evaluation runs, with what names it in titles and what the resume journal keys on."""

    policy: ChunkPolicy
    label: str  # short name for titles and the default out_dir: "expert", "<run>_<checkpoint>", ...
    identity: str | dict[str, Any]  # "expert", or the weights' sha256 and where they come from


def policy_under_test(cfg: EvalConfig, suite: Suite) -> PolicyUnderTest:
    """The scripted experts, or a trained policy from its checkpoint directory, checked against the suite."""
    if cfg.checkpoint is None:
        if cfg.acting.n_action_steps is not None or cfg.acting.num_inference_steps is not None:
            raise ValueError("acting.* changes how a trained policy acts; give its checkpoint=... (the scripted "
                             "experts take none)")
        return PolicyUnderTest(suite.make_expert(), "expert", "expert")
    if not Path(cfg.checkpoint).is_dir():
        raise FileNotFoundError(f"checkpoint={cfg.checkpoint!r} is not a directory (train.py writes "
                                "<out_dir>/checkpoints/last)")
    policy, record = load_policy(cfg.checkpoint)
    check_policy_fits(policy.spec, suite)
    weights = Path(cfg.checkpoint) / WEIGHTS_FILE
    source = {"checkpoint": str(Path(cfg.checkpoint).resolve()),
              "sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}
    if UNTRAINED_TASKS in record["metadata"]:
        source[UNTRAINED_TASKS] = record["metadata"][UNTRAINED_TASKS]
    overrides = cfg.acting.apply(policy)
    if overrides:
        source["acting"] = overrides
    return learned_policy(policy, suite, source, checkpoint_label(cfg.checkpoint), cfg.device, cfg.rollout)


def learned_policy(policy: MultitaskPolicy, suite: Suite, source: dict[str, Any], label: str, device: str,
                   rollout: RolloutConfig) -> PolicyUnderTest:
    """A trained policy ready for the engine. Its identity holds what its actions depend on: the weights
    (`source`, with their sha256), the device and the fixed micro-batch and thread count."""
    actor = PolicyActor(policy, suite.tasks, device=device, batch_size=rollout.policy_batch_size)
    inference = {"device": str(actor.device), "batch_size": rollout.policy_batch_size,
                 "threads": rollout.policy_threads, **({"notes": actor.notes} if actor.notes else {})}
    return PolicyUnderTest(actor, label, {**source, "inference": inference})


def check_policy_fits(spec: PolicySpec, suite: Suite) -> None:
    """Raise ValueError when the policy's state, action or camera inputs do not match the suite's envs (for a
    policy across suites: those of the suite among its own, which must be one of them)."""
    own = spec.shape_of(suite.config.suite)
    if (own.state_dim, own.action_dim) != (suite.state_dim, suite.action_dim):
        raise ValueError(f"the policy was trained for state dim {own.state_dim} and action dim {own.action_dim} "
                         f"({own.name}); {suite.name} has {suite.state_dim} and {suite.action_dim}")
    size = suite.config.image_size
    for camera in own.cameras:
        shape = spec.image_shapes[camera]
        if camera not in suite.config.cameras or tuple(shape) != (3, size, size):
            raise ValueError(f"the policy needs camera {camera!r} at {shape[1]}x{shape[2]}; run with "
                             f"env.cameras={own.cameras} env.image_size={shape[1]}")


def checkpoint_label(checkpoint: str) -> str:
    """A short name of a checkpoint for out_dir and titles: <training run>_<checkpoint>."""
    path = Path(checkpoint).resolve()
    return f"{path.parent.parent.name}_{path.name}"


def episode_requests(tasks: list[Task], episodes_per_task: int, done: set[tuple[str, int]]) -> list[EpisodeRequest]:
    """Task-major order, so workers keep reusing the env of one task."""
    return [EpisodeRequest(task, e) for task in tasks for e in range(episodes_per_task)
            if (task.name, e) not in done]


def tasks_to_run(suite: Suite, names: list[str] | None) -> list[Task]:
    """The suite's tasks named (in the suite's order, with their own indices), or all of them."""
    if names is None:
        return suite.tasks
    known = {t.name for t in suite.tasks}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"tasks: {unknown} are not tasks of {suite.name}; known: {', '.join(sorted(known))}")
    return [t for t in suite.tasks if t.name in names]


def default_out_dir(cfg: EvalConfig, label: str) -> Path:
    task = f"_{cfg.env.task}" if cfg.env.task else ""
    return Path("outputs") / "eval" / f"{cfg.env.suite}{task}_{label}"


@contextmanager
def policy_threads(threads: int) -> Iterator[None]:
    """Torch threads of the policy while the engine runs: fixed (rollout.policy_threads), since the
    thread count changes a CPU kernel's rounding; few, since threads spinning beside busy workers cost more
    than they compute (measured: 5x slower rollouts with 2 torch threads and 2 workers on 2 cores)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def evaluate(cfg: EvalConfig, under_test: PolicyUnderTest | None = None) -> dict[str, Any]:
    """Run (or resume) an evaluation and write its result files; returns results.json's content.

    `under_test` replaces the policy `cfg.checkpoint` names (train.py passes the weights it is training).
    """
    suite = make_suite(cfg.env)
    episodes = cfg.episodes_per_task or suite.episodes_per_task
    if suite.goals is not None and episodes > suite.episodes_per_task:
        raise ValueError(f"episodes_per_task={episodes} but {suite.name} has {suite.episodes_per_task} "
                         "fixed goal variations per task; use env.goal_set=random for more")
    tasks = tasks_to_run(suite, cfg.tasks)
    under_test = under_test or policy_under_test(cfg, suite)
    policy = under_test.policy
    out_dir = ensure_folder(Path(cfg.out_dir) if cfg.out_dir else default_out_dir(cfg, under_test.label), "out_dir")
    identity = {"suite": suite.name, "tasks": [t.to_dict() for t in suite.tasks], "env": OmegaConf.to_container(
        OmegaConf.structured(cfg.env)), "policy": under_test.identity,
        "n_obs_steps": policy.n_obs_steps, "n_action_steps": policy.n_action_steps, "seed": cfg.rollout.seed}
    protocol = suite.protocol() | {"episodes_per_task": episodes}
    if cfg.tasks is not None:  # a part of the suite: its own run, and results that say so
        identity["evaluated_tasks"] = protocol["evaluated_tasks"] = [t.name for t in tasks]
    title = f"{suite.name}: {under_test.label}"
    with EpisodeJournal.open(out_dir / "episodes.jsonl", config_fingerprint(identity)) as journal:
        write_text(out_dir / "config.yaml", OmegaConf.to_yaml(OmegaConf.structured(cfg)))  # the journal accepted it
        requests = episode_requests(tasks, episodes, journal.done_keys())
        if len(requests) < episodes * len(tasks):
            log.info("resuming: %d of %d episodes already in %s", episodes * len(tasks) - len(requests),
                     episodes * len(tasks), journal.path)
        engine = make_engine(suite, cfg.rollout, policy, out_dir, cfg.progress)
        complete = False
        try:
            with policy_threads(cfg.rollout.policy_threads):
                engine.run(requests, on_record=journal.append)
            complete = True
        finally:
            wanted = {(t.name, e) for t in tasks for e in range(episodes)}
            records = [r for r in journal.records if (r.task, r.episode) in wanted]
            summary = summarize(records, tasks)
            metadata = provenance(protocol=protocol, seed=cfg.rollout.seed, complete=complete, identity=identity)
            try:
                write_results(out_dir, summary, metadata, title)
                write_results_html(out_dir, {"metadata": metadata, **summary}, title, records)
            except DiskFullError as error:
                if complete:
                    raise
                log.error("%s", error)  # the error that stopped the run is raised; the journal holds every episode
            if not complete:
                log.warning("stopped: %d episodes are saved in %s; re-run the same command to resume",
                            len(records), journal.path)
    print(format_markdown(summary, title))
    print(f"\nresults: {out_dir / 'results.json'}  videos: {out_dir / 'videos'}")
    return {"metadata": metadata, **summary}
