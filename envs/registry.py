"""The suite registry: named sets of tasks with their official evaluation protocol.

    suite = make_suite(EnvConfig(suite="metaworld_mt10"))
    env = suite.make_env(suite.tasks[0])            # in the process that steps it
    expert = suite.make_expert()                    # the suite's scripted experts (a ChunkPolicy)

Each simulator family is a subpackage of `envs/` (`envs/metaworld/`, `envs/libero/`) that registers its
suites when imported: `@SUITES.register("name")` on a function EnvConfig -> Suite. The registry imports
every subpackage before its first lookup, so a new family is a new folder; nothing here names one.
A suite is plain data (it is pickled into the worker processes); its env and expert factories are
module-level functions, pickled by reference, so a worker imports the family it runs and no other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from common.registry import Registry
from common.schema import ChunkPolicy, Task
from envs.base import EnvOptions
from envs.config import EnvConfig

SUITES: Registry[Callable[[EnvConfig], "Suite"]] = Registry("suite", discover="envs", packages_only=True)
EnvFactory = Callable[["Suite", Task, EnvOptions], gym.Env]
ExpertFactory = Callable[[list[Task]], ChunkPolicy]


def register_suite(name: str) -> Callable[[Callable[[EnvConfig], "Suite"]], Callable[[EnvConfig], "Suite"]]:
    """Decorator: register a function that builds the suite `name` from an EnvConfig."""
    return SUITES.register(name)


def available_suites() -> list[str]:
    return SUITES.names()


def make_suite(config: EnvConfig) -> "Suite":
    """Build the suite named by ``config.suite``; an unknown name lists the known ones."""
    return SUITES.get(config.suite)(config)


@dataclass
class Suite:
    """A named list of tasks, the official protocol, and how to build one task's env and its expert.

    Attributes:
        name: registry name, plus the task for single-task suites (``metaworld_mt1/push-v3``).
        family: the simulator family, for provenance only (``metaworld``, ``libero``).
        tasks: tasks in index order (``tasks[i].index == i``).
        episodes_per_task: episodes of the official protocol.
        max_episode_steps: the official horizon.
        config: the EnvConfig it was built from.
        env_factory: (suite, task, options) -> the task's env.
        expert_factory: (tasks) -> the scripted experts of those tasks.
        camera_names: cameras every task of the suite has.
        goals: task name -> goal variations (episodes_per_task, Dg), or None for fresh goals;
            for LIBERO the official init states (50, D), D the flattened MuJoCo state size.
        state_layout: how ``obs.state`` is stored in demonstration files: (obs key, width) pairs in
            order, e.g. LIBERO's (("ee_pos", 3), ("ee_ori", 3), ("gripper_states", 2)).
        action_dim: Da of the env's actions.
        video_camera: the camera of rollout videos unless ``rollout.video_camera`` names another.
        protocol_text: how an episode's success is decided, for results.json.
    """

    name: str
    family: str
    tasks: list[Task]
    episodes_per_task: int
    max_episode_steps: int
    config: EnvConfig
    env_factory: EnvFactory
    expert_factory: ExpertFactory
    camera_names: tuple[str, ...] = ()
    goals: dict[str, np.ndarray] | None = field(default=None, repr=False)
    state_layout: tuple[tuple[str, int], ...] = ()
    action_dim: int = 0
    video_camera: str = ""
    protocol_text: str = "info['success'] reached at any step of the episode"

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
                "max_episode_steps": self.max_episode_steps, "goal_set": str(self.config.goal_set),
                "goal_seed": self.config.goal_seed, "terminate_on_success": self.config.terminate_on_success,
                "success": self.protocol_text}

    def make_env(self, task: Task, render_mode: str | None = None, video_camera: str | None = None,
                 video_size: int = 256) -> gym.Env:
        """Build the env of one task (call it in the process that steps it)."""
        cfg = self.config
        options = EnvOptions(cameras=tuple(cfg.cameras), image_size=cfg.image_size, fast_render=cfg.fast_render,
                             max_episode_steps=self.max_episode_steps, terminate_on_success=cfg.terminate_on_success,
                             num_tasks=len(self.tasks), render_mode=render_mode,
                             video_camera=video_camera or self.video_camera, video_size=video_size)
        return self.env_factory(self, task, options)

    def make_expert(self) -> ChunkPolicy:
        """The scripted experts of the suite's tasks, as a ChunkPolicy."""
        return self.expert_factory(self.tasks)
