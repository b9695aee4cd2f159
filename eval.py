"""Evaluate a policy on a suite with parallel MuJoCo rollouts.

    python eval.py                                          # scripted experts on MT10, official protocol
    python eval.py env=metaworld_mt50 episodes_per_task=10  # fast mode: 10 goal variations per task
    python eval.py env=metaworld_mt1 env.task=push-v3 rollout.num_workers=2 rollout.videos_per_task=3

Writes into `out_dir` (default outputs/eval/<suite>_<policy>): results.json, results.md,
episodes.jsonl (one line per finished episode) and videos/*.mp4. Interrupted runs keep what
finished; re-running the same command resumes.
"""

from __future__ import annotations

import logging
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from envs.config import EnvConfig
from envs.experts import make_expert
from envs.results import EpisodeJournal, EpisodeRecord, config_fingerprint, format_markdown, summarize, write_results
from envs.rollout import EpisodeRequest, RolloutConfig, RolloutEngine
from envs.suites import Suite, make_suite
from eval_metadata import run_metadata

log = logging.getLogger("eval")


@dataclass
class PolicyConfig:
    """Which policy acts."""

    name: str = "expert"  # "expert": the suite's scripted experts


@dataclass
class EvalConfig:
    env: EnvConfig = field(default_factory=EnvConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    episodes_per_task: int | None = None  # None: the official protocol (50 for Meta-World); fewer = fast mode
    out_dir: str | None = None  # None: outputs/eval/<suite>_<policy>
    progress: bool = True  # progress bar on stderr

    def __post_init__(self) -> None:
        if self.episodes_per_task is not None and self.episodes_per_task < 1:
            raise ValueError(f"episodes_per_task must be >= 1 (or null for the official protocol), "
                             f"got {self.episodes_per_task}")


ConfigStore.instance().store(name="eval_schema", node=EvalConfig)
ConfigStore.instance().store(group="policy", name="policy_schema", node=PolicyConfig)


def make_policy(config: PolicyConfig, suite: Suite):
    if config.name == "expert":
        return make_expert(suite.family, suite.tasks)
    raise ValueError(f"unknown policy {config.name!r}; known: ['expert']")


def episode_requests(suite: Suite, episodes_per_task: int, done: set[tuple[str, int]]) -> list[EpisodeRequest]:
    """Task-major order, so workers keep reusing the env of one task."""
    return [EpisodeRequest(task, e) for task in suite.tasks for e in range(episodes_per_task)
            if (task.name, e) not in done]


def default_out_dir(cfg: EvalConfig) -> Path:
    return Path("outputs") / "eval" / f"{cfg.env.suite}{'_' + cfg.env.task if cfg.env.task else ''}_{cfg.policy.name}"


def evaluate(cfg: EvalConfig) -> dict[str, Any]:
    """Run (or resume) an evaluation and write its result files; returns results.json's content."""
    suite = make_suite(cfg.env)
    episodes = cfg.episodes_per_task or suite.episodes_per_task
    if suite.goals is not None and episodes > suite.episodes_per_task:
        raise ValueError(f"episodes_per_task={episodes} but {suite.name} has {suite.episodes_per_task} "
                         "fixed goal variations per task; use env.goal_set=random for more")
    policy = make_policy(cfg.policy, suite)
    out_dir = Path(cfg.out_dir) if cfg.out_dir else default_out_dir(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
    identity = {"suite": suite.name, "tasks": [t.to_dict() for t in suite.tasks], "env": OmegaConf.to_container(
        OmegaConf.structured(cfg.env)), "policy": OmegaConf.to_container(OmegaConf.structured(cfg.policy)),
        "n_obs_steps": policy.n_obs_steps, "n_action_steps": policy.n_action_steps, "seed": cfg.rollout.seed}
    title = f"{suite.name}: {cfg.policy.name}"
    with EpisodeJournal.open(out_dir / "episodes.jsonl", config_fingerprint(identity)) as journal:
        requests = episode_requests(suite, episodes, journal.done_keys())
        if len(requests) < episodes * len(suite.tasks):
            log.info("resuming: %d of %d episodes already in %s", episodes * len(suite.tasks) - len(requests),
                     episodes * len(suite.tasks), journal.path)
        engine = RolloutEngine(suite, cfg.rollout, policy.n_obs_steps, policy.n_action_steps, out_dir, cfg.progress)
        complete = False
        try:
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


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@hydra.main(config_path="configs", config_name="eval", version_base="1.3")
def main(cfg) -> None:
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)  # a kill keeps finished episodes, like Ctrl-C
    try:
        evaluate(OmegaConf.to_object(cfg))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
