"""Typed configuration of the simulation side, registered with hydra's ConfigStore."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from hydra.core.config_store import ConfigStore


class GoalSet(StrEnum):
    official = "official"  # the benchmark's fixed goal variations (Meta-World) or init states (LIBERO)
    random = "random"  # fresh goals or object placements, drawn from each episode's seed


class FaultKind(StrEnum):
    exception = "exception"  # the env raises a Python exception
    segfault = "segfault"  # the worker process dies
    hang = "hang"  # the env never returns from its step (a stuck simulator or GL call)


@dataclass
class FaultConfig:
    """Deliberate failures, to test that the evaluation engine survives them. Off by default."""

    kind: FaultKind | None = None  # None, exception, segfault or hang
    task: str | None = None  # task name to fail in; None: any task
    episode: int = 0  # episode index to fail in
    step: int = 1  # env step (1-based) at which to fail
    only_once: bool = True  # fail only the first time (so a resumed run completes)


@dataclass
class EnvConfig:
    """Which suite to run and how the simulator is observed."""

    suite: str = "metaworld_mt10"  # a registered suite (envs.registry); a wrong name lists the known ones
    task: str | None = None  # the one task of single-task suites (metaworld_mt1), e.g. "push-v3"
    cameras: list[str] = field(default_factory=list)  # cameras the policy sees; empty = state only
    image_size: int = 128  # square camera images, pixels per side
    fast_render: bool = True  # shadows, reflections and anti-aliasing off: much faster on CPU, same geometry
    goal_set: GoalSet = GoalSet.official  # official or random
    goal_seed: int = 0  # seed of the benchmark's goal variations
    max_episode_steps: int | None = None  # None: the suite's official horizon (500 for Meta-World)
    terminate_on_success: bool = True  # end an episode at its first success (success is "ever reached")
    fault: FaultConfig = field(default_factory=FaultConfig)

    def __post_init__(self) -> None:
        if self.image_size < 1:
            raise ValueError(f"env.image_size must be >= 1, got {self.image_size}")
        if self.max_episode_steps is not None and self.max_episode_steps < 1:
            raise ValueError(f"env.max_episode_steps must be >= 1 (or null), got {self.max_episode_steps}")


ConfigStore.instance().store(group="env", name="env_schema", node=EnvConfig)
