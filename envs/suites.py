"""The suite registry: named sets of tasks with their official evaluation protocol.

    suite = make_suite(EnvConfig(suite="metaworld_mt10"))
    env = suite.make_env(suite.tasks[0])

A suite is plain data (it is pickled into the worker processes); `make_env` builds the
simulator, so call it inside the process that will step it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from envs.config import EnvConfig
from schema import Task

SuiteBuilder = Callable[[EnvConfig], "Suite"]
_SUITES: dict[str, SuiteBuilder] = {}


def register_suite(name: str) -> Callable[[SuiteBuilder], SuiteBuilder]:
    """Decorator: register a function that builds the suite `name` from an EnvConfig."""

    def decorate(builder: SuiteBuilder) -> SuiteBuilder:
        if name in _SUITES:
            raise ValueError(f"suite {name!r} is registered twice")
        _SUITES[name] = builder
        return builder

    return decorate


def available_suites() -> list[str]:
    return sorted(_SUITES)


def make_suite(config: EnvConfig) -> "Suite":
    """Build the suite named by ``config.suite``; an unknown name lists the known ones."""
    if config.suite not in _SUITES:
        raise KeyError(f"unknown suite {config.suite!r}; known suites: {', '.join(available_suites())}")
    return _SUITES[config.suite](config)


@dataclass
class Suite:
    """A named list of tasks, the official protocol, and how to build one task's env.

    Attributes:
        name: registry name, plus the task for single-task suites (``metaworld_mt1/push-v3``).
        family: simulator family, ``metaworld`` or ``libero``; selects the env factory.
        tasks: tasks in index order (``tasks[i].index == i``).
        episodes_per_task: episodes of the official protocol.
        max_episode_steps: the official horizon.
        config: the EnvConfig it was built from.
        camera_names: cameras every task of the suite has.
        goals: task name -> goal variations (episodes_per_task, Dg), or None for fresh goals;
            for LIBERO the official init states (50, D), D the flattened MuJoCo state size.
        state_layout: how ``obs.state`` is stored in demonstration files: (obs key, width) pairs in
            order, e.g. LIBERO's (("ee_pos", 3), ("ee_ori", 3), ("gripper_states", 2)).
        action_dim: Da of the env's actions.
        video_camera: the camera of rollout videos unless ``rollout.video_camera`` names another.
    """

    name: str
    family: str
    tasks: list[Task]
    episodes_per_task: int
    max_episode_steps: int
    config: EnvConfig
    camera_names: tuple[str, ...] = ()
    goals: dict[str, np.ndarray] | None = field(default=None, repr=False)
    state_layout: tuple[tuple[str, int], ...] = ()
    action_dim: int = 0
    video_camera: str = ""

    def __post_init__(self) -> None:
        self.check_cameras(self.config.cameras)

    @property
    def state_dim(self) -> int:
        """Ds of ``obs.state``."""
        return sum(width for _, width in self.state_layout)

    def check_cameras(self, cameras: list[str] | tuple[str, ...]) -> None:
        """Fail early, in the main process, on a camera name the suite's scenes do not have."""
        unknown = [c for c in cameras if c not in self.camera_names]
        if unknown:
            raise ValueError(f"unknown camera(s) {unknown} for {self.name}; its cameras: {list(self.camera_names)}")

    def task(self, name: str) -> Task:
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(f"suite {self.name} has no task {name!r}; its tasks: {[t.name for t in self.tasks]}")

    def protocol(self) -> dict[str, Any]:
        """What makes two evaluations comparable (written into results.json)."""
        return {"suite": self.name, "episodes_per_task": self.episodes_per_task,
                "max_episode_steps": self.max_episode_steps, "goal_set": self.config.goal_set,
                "goal_seed": self.config.goal_seed, "terminate_on_success": self.config.terminate_on_success,
                "success": "info['success'] reached at any step of the episode"}

    def make_env(self, task: Task, render_mode: str | None = None, **video: Any) -> gym.Env:
        """Build the env of one task (call it in the process that steps it)."""
        cfg = self.config
        common = dict(cameras=tuple(cfg.cameras), image_size=cfg.image_size, fast_render=cfg.fast_render,
                      max_episode_steps=self.max_episode_steps, terminate_on_success=cfg.terminate_on_success,
                      num_tasks=len(self.tasks), render_mode=render_mode, **video)
        goals = None if self.goals is None else self.goals[task.name]
        if self.family == "metaworld":
            from envs.metaworld_env import MetaWorldTaskEnv

            return MetaWorldTaskEnv(task, goals, **common)
        if self.family == "libero":
            from envs.libero_env import LiberoTaskEnv
            from envs.libero_suites import NUM_SETTLE_STEPS, bddl_file

            return LiberoTaskEnv(task, bddl_file(self.name, task.index), goals, num_settle_steps=NUM_SETTLE_STEPS,
                                 **common)
        raise ValueError(f"no env factory for suite family {self.family!r}")


# Importing the suite modules registers their suites.
import envs.libero_suites  # noqa: E402,F401  (registration side effect; imports libero lazily)
import envs.metaworld_suites  # noqa: E402,F401  (registration side effect)
