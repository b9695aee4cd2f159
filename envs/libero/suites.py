"""LIBERO suites: libero_spatial, libero_object, libero_goal, libero_10 and libero_90.

Official protocol: each task is run once from each of its 50 fixed init states (episode e
uses init state e), after `NUM_SETTLE_STEPS` no-op steps, for at most the suite's step limit;
an episode succeeds if the benchmark's BDDL goal check holds at any step. Tasks, their order
(task order 0, the identity) and their instructions (``task.language``) come from
``libero.libero.benchmark``; the task index is the position in that order.

``env.goal_set=random`` replaces the init states by fresh object placements sampled by
robosuite from the BDDL regions, seeded per episode (for demonstrations).
"""

from __future__ import annotations

import functools

import numpy as np

from common.schema import ChunkPolicy, Task
from envs.base import EnvOptions
from envs.config import EnvConfig, GoalSet
from envs.libero.benchmark import bddl_file, libero_benchmark
from envs.libero.env import ACTION_DIM, CAMERAS, STATE_LAYOUT, LiberoTaskEnv
from envs.registry import Suite, register_suite

# Per-suite step limits of the standard LIBERO evaluation (OpenVLA's run_libero_eval.py).
LIBERO_MAX_STEPS = {"libero_spatial": 220, "libero_object": 280, "libero_goal": 300, "libero_10": 520,
                    "libero_90": 400}
INIT_STATES_PER_TASK = 50


def make_env(suite: Suite, task: Task, options: EnvOptions) -> LiberoTaskEnv:
    """The env factory of every LIBERO suite (imports robosuite: seconds, once per worker)."""
    init_states = None if suite.goals is None else suite.goals[task.name]
    return LiberoTaskEnv(task, bddl_file(suite.name, task.index), init_states, options)


def make_expert(tasks: list[Task]) -> ChunkPolicy:
    """The expert factory of every LIBERO suite: the privileged-state experts of `envs.libero.expert`."""
    from envs.libero.expert import LiberoExpertPolicy

    return LiberoExpertPolicy(tasks)


def _libero_suite(name: str, config: EnvConfig) -> Suite:
    if config.task is not None:
        raise ValueError(f"{name} runs all its tasks; env.task must be null, got {config.task!r}")
    bench = libero_benchmark(name)
    tasks = [Task(suite=name, name=bench.get_task(i).name, index=i, instruction=bench.get_task(i).language)
             for i in range(bench.get_num_tasks())]
    init_states = None
    if config.goal_set == GoalSet.official:
        init_states = {t.name: np.asarray(bench.get_task_init_states(t.index)) for t in tasks}
    # The init states play the role of Meta-World's goal variations: one per episode of the protocol.
    return Suite(name=name, family="libero", tasks=tasks, episodes_per_task=INIT_STATES_PER_TASK,
                 max_episode_steps=config.max_episode_steps or LIBERO_MAX_STEPS[name], config=config,
                 env_factory=make_env, expert_factory=make_expert, camera_names=tuple(CAMERAS),
                 goals=init_states, state_layout=STATE_LAYOUT, action_dim=ACTION_DIM, video_camera="agentview",
                 protocol_text="the task's BDDL goal holds at any step of the episode (after the settle steps)")


for _name in LIBERO_MAX_STEPS:
    register_suite(_name)(functools.partial(_libero_suite, _name))
