"""A third simulator family, written as a user would add one, to prove the generic code needs no edit.

A ball on a table, pushed by two motors, must reach a target: suite ``toy_reach`` with two tasks (the
target on the left or on the right), five target variations per task, and a proportional-derivative
expert. Importing this module registers the suite; its env and expert factories are module-level, so the
engine's worker processes import this module by itself.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from common.schema import OBS_STATE, Task
from envs.base import EnvOptions, TaskEnv, variation_index
from envs.config import EnvConfig
from envs.registry import Suite, register_suite

SCENE = """
<mujoco>
  <option timestep="0.02"/>
  <worldbody>
    <light pos="0 0 3" dir="0 0 -1" diffuse="0.6 0.6 0.6"/>
    <geom type="plane" size="1 1 0.1" rgba="0.8 0.8 0.7 1"/>
    <body name="ball" pos="0 0 0.05">
      <joint name="x" type="slide" axis="1 0 0" damping="2"/>
      <joint name="y" type="slide" axis="0 1 0" damping="2"/>
      <geom type="sphere" size="0.05" rgba="0.9 0.1 0.1 1" mass="1"/>
    </body>
    <site name="target" pos="0.5 0 0.05" size="0.05" rgba="0.1 0.8 0.1 1"/>
    <camera name="top" pos="0 0 2.2" xyaxes="1 0 0 0 1 0"/>
  </worldbody>
  <actuator>
    <motor joint="x" gear="2"/>
    <motor joint="y" gear="2"/>
  </actuator>
</mujoco>
"""
TASK_SIDES = {"reach-left": -1.0, "reach-right": 1.0}
VARIATIONS = 5
REACHED = 0.05  # metres from the target


class ToyReachEnv(TaskEnv):
    """obs.state (6,): ball position (2), velocity (2), target (2). Actions (2,): motor forces."""

    def __init__(self, task: Task, targets: np.ndarray, options: EnvOptions):
        super().__init__(task, options, state_dim=6, action_dim=2)
        self.targets = targets
        self._model = mujoco.MjModel.from_xml_string(SCENE)
        self._data = mujoco.MjData(self._model)

    @property
    def model(self) -> mujoco.MjModel:
        return self._model

    @property
    def data(self) -> mujoco.MjData:
        return self._data

    def _reset_sim(self, episode: int | None) -> None:
        mujoco.mj_resetData(self._model, self._data)
        target = self.targets[variation_index(self.task, episode, len(self.targets), self.np_random, "target")]
        self._model.site_pos[0, :2] = target
        mujoco.mj_forward(self._model, self._data)

    def _step_sim(self, action: np.ndarray) -> tuple[None, float, bool]:
        self._data.ctrl[:] = action
        mujoco.mj_step(self._model, self._data, nstep=5)
        distance = float(np.linalg.norm(self._data.qpos[:2] - self._model.site_pos[0, :2]))
        return None, -distance, distance < REACHED

    def _state(self, raw: Any) -> np.ndarray:
        return np.concatenate([self._data.qpos[:2], self._data.qvel[:2], self._model.site_pos[0, :2]])


class ToyReachExpert:
    """Pushes the ball towards the target, braking with its velocity."""

    n_obs_steps = 1
    n_action_steps = 2
    runs_in_worker = True

    def __init__(self, tasks: list[Task]):
        self.tasks = tasks

    def predict_action_chunk(self, batch: dict[str, Any]) -> np.ndarray:
        state = np.asarray(batch[OBS_STATE])[:, -1]
        action = np.clip(4.0 * (state[:, 4:6] - state[:, 0:2]) - 0.8 * state[:, 2:4], -1, 1)
        return np.repeat(action[:, None], 2, axis=1).astype(np.float32)


def make_env(suite: Suite, task: Task, options: EnvOptions) -> ToyReachEnv:
    return ToyReachEnv(task, suite.goals[task.name], options)


@register_suite("toy_reach")
def toy_reach(config: EnvConfig) -> Suite:
    tasks = [Task("toy_reach", name, i, f"roll the ball to the {name.split('-')[1]}")
             for i, name in enumerate(TASK_SIDES)]
    rng = np.random.default_rng(config.goal_seed)
    goals = {name: np.stack([np.array([0.5 * side, 0.0]) + rng.uniform(-0.15, 0.15, 2) for _ in range(VARIATIONS)])
             for name, side in TASK_SIDES.items()}
    return Suite(name="toy_reach", family="toy", tasks=tasks, episodes_per_task=VARIATIONS,
                 max_episode_steps=config.max_episode_steps or 150, config=config, env_factory=make_env,
                 expert_factory=ToyReachExpert, camera_names=("top",), goals=goals,
                 state_layout=(("state", 6),), action_dim=2, video_camera="top")


