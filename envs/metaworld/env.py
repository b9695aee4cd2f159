"""One Meta-World v3 task as a `TaskEnv` whose goal variation is chosen per episode."""

from __future__ import annotations

import pickle

import mujoco
import numpy as np
from metaworld.env_dict import ALL_V3_ENVIRONMENTS
from metaworld.types import Task as MetaWorldTask

from common.schema import Task
from envs.base import EnvOptions, TaskEnv, variation_index

METAWORLD_HORIZON = 500  # metaworld refuses to step past max_path_length = 500
STATE_DIM = 39
ACTION_DIM = 4


class MetaWorldTaskEnv(TaskEnv):
    """A Meta-World task (see `envs.base` for observations, success and instability).

    ``obs.state`` (39,): hand, gripper, objects, previous frame, goal. Actions (4,) in [-1, 1]:
    end-effector xyz delta and gripper. Reward: metaworld's dense reward.

    ``reset(options={"episode": i})`` selects goal variation ``i`` of ``goals`` (50, Dg); without it the
    variation is drawn from the seeded RNG. With ``goals=None`` metaworld draws a fresh goal at every
    reset (redrawing those its task rejects) from a generator seeded by the reset's seed.
    ``sim`` is the underlying metaworld env (MuJoCo ``sim.model`` / ``sim.data``).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 80}

    def __init__(self, task: Task, goals: np.ndarray | None, options: EnvOptions):
        if task.name not in ALL_V3_ENVIRONMENTS:
            raise ValueError(f"unknown Meta-World task {task.name!r}; known: {sorted(ALL_V3_ENVIRONMENTS)}")
        if options.max_episode_steps > METAWORLD_HORIZON:
            raise ValueError(f"max_episode_steps must be in 1..{METAWORLD_HORIZON}, got {options.max_episode_steps}")
        super().__init__(task, options, STATE_DIM, ACTION_DIM)
        self.goals = goals
        self._env_cls = ALL_V3_ENVIRONMENTS[task.name]
        self.sim = self._env_cls()
        self.goal: np.ndarray | None = None

    @property
    def model(self) -> mujoco.MjModel:
        return self.sim.model

    @property
    def data(self) -> mujoco.MjData:
        return self.sim.data

    def _reset_sim(self, episode: int | None) -> np.ndarray:
        goal = None
        if self.goals is not None:
            goal = np.asarray(self.goals[variation_index(self.task, episode, len(self.goals), self.np_random,
                                                         "goal variation")])
        # set_task needs some goal vector; for fresh goals it is replaced just below.
        data = dict(rand_vec=goal if goal is not None else np.zeros(1), env_cls=self._env_cls,
                    partially_observable=False)
        self.sim.set_task(MetaWorldTask(env_name=self.task.name, data=pickle.dumps(data)))
        if goal is None:
            # Fresh goals are drawn by metaworld itself from its seeded RNG: several tasks reject
            # and redraw goals that sit too close to the object, which only works unfrozen.
            self.sim._freeze_rand_vec, self.sim.seeded_rand_vec = False, True
            self.sim.seed(int(self.np_random.integers(2**31)))
        state, _ = self.sim.reset()
        self.goal = np.asarray(self.sim._last_rand_vec).copy()
        return state

    def _step_sim(self, action: np.ndarray) -> tuple[np.ndarray, float, bool]:
        state, reward, _, _, info = self.sim.step(action.astype(np.float32))
        return state, float(reward), bool(info["success"])

    def _state(self, raw: np.ndarray) -> np.ndarray:
        return raw

    def _close_sim(self) -> None:
        self.sim.close()
