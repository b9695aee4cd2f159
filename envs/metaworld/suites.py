"""Meta-World v3 suites: MT1 (one task), MT10 and MT50, with the official multitask protocol.

Protocol: each task is run once on each of its 50 fixed goal variations, horizon 500, and an
episode succeeds if ``info["success"]`` is reached at any step.
"""

from __future__ import annotations

from metaworld.env_dict import ALL_V3_ENVIRONMENTS, MT10_V3

from common.schema import Task
from envs.base import EnvOptions
from envs.config import EnvConfig, GoalSet
from envs.metaworld.env import ACTION_DIM, METAWORLD_HORIZON, STATE_DIM, MetaWorldTaskEnv
from envs.metaworld.expert import MetaWorldExpertPolicy
from envs.metaworld.goals import GOALS_PER_TASK, official_goals
from envs.metaworld.instructions import METAWORLD_INSTRUCTIONS
from envs.registry import Suite, register_suite

# The cameras of Meta-World's shared Sawyer scene (every task has them).
METAWORLD_CAMERAS = ("topview", "corner", "corner2", "corner3", "corner4", "behindGripper", "gripperPOV")


def make_env(suite: Suite, task: Task, options: EnvOptions) -> MetaWorldTaskEnv:
    """The env factory of every Meta-World suite."""
    return MetaWorldTaskEnv(task, None if suite.goals is None else suite.goals[task.name], options)


def _metaworld_suite(suite: str, benchmark: str, task_names: list[str], config: EnvConfig) -> Suite:
    tasks = [Task(suite=suite, name=name, index=i, instruction=METAWORLD_INSTRUCTIONS[name])
             for i, name in enumerate(task_names)]
    goals = official_goals(benchmark, task_names, config.goal_seed) if config.goal_set == GoalSet.official else None
    max_steps = config.max_episode_steps or METAWORLD_HORIZON
    label = f"{suite}/{task_names[0]}" if benchmark == "MT1" else suite
    return Suite(name=label, family="metaworld", tasks=tasks, episodes_per_task=GOALS_PER_TASK,
                 max_episode_steps=max_steps, config=config, env_factory=make_env,
                 expert_factory=MetaWorldExpertPolicy, camera_names=METAWORLD_CAMERAS, goals=goals,
                 state_layout=(("state", STATE_DIM),), action_dim=ACTION_DIM, video_camera="corner")


@register_suite("metaworld_mt1")
def metaworld_mt1(config: EnvConfig) -> Suite:
    if config.task is None:
        raise ValueError(f"metaworld_mt1 needs env.task, one of: {', '.join(ALL_V3_ENVIRONMENTS)}")
    if config.task not in ALL_V3_ENVIRONMENTS:
        raise ValueError(f"unknown Meta-World task {config.task!r}; known: {', '.join(ALL_V3_ENVIRONMENTS)}")
    return _metaworld_suite("metaworld_mt1", "MT1", [config.task], config)


@register_suite("metaworld_mt10")
def metaworld_mt10(config: EnvConfig) -> Suite:
    return _metaworld_suite("metaworld_mt10", "MT10", list(MT10_V3), config)


@register_suite("metaworld_mt50")
def metaworld_mt50(config: EnvConfig) -> Suite:
    return _metaworld_suite("metaworld_mt50", "MT50", list(ALL_V3_ENVIRONMENTS), config)
