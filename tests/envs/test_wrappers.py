"""Observation-history and action-chunk wrappers on a tiny deterministic env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from envs.wrappers import ActionChunkWrapper, ObsHistoryWrapper


class CounterEnv(gym.Env):
    """state = number of steps taken; the episode ends after `length` steps."""

    def __init__(self, length: int = 5):
        self.length = length
        self.observation_space = gym.spaces.Dict({"obs.state": gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)})
        self.action_space = gym.spaces.Box(-1, 1, (2,), np.float32)
        self.t = 0
        self.actions = []

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.actions = 0, []
        return {"obs.state": np.array([0.0], np.float32)}, {}

    def step(self, action):
        self.t += 1
        self.actions.append(np.asarray(action))
        done = self.t >= self.length
        return {"obs.state": np.array([self.t], np.float32)}, 1.0, done, False, {"success": done, "steps": self.t}


def test_history_pads_with_the_first_observation_then_slides():
    env = ObsHistoryWrapper(CounterEnv(), n_obs_steps=3)
    obs, _ = env.reset()
    np.testing.assert_array_equal(obs["obs.state"][:, 0], [0, 0, 0])
    obs, *_ = env.step(np.zeros(2))
    np.testing.assert_array_equal(obs["obs.state"][:, 0], [0, 0, 1])
    for _ in range(2):
        obs, *_ = env.step(np.zeros(2))
    np.testing.assert_array_equal(obs["obs.state"][:, 0], [1, 2, 3])
    assert obs["obs.state"].shape == (3, 1) and env.observation_space["obs.state"].shape == (3, 1)


def test_chunk_executes_the_first_n_action_steps_in_order():
    base = CounterEnv(length=100)
    env = ActionChunkWrapper(ObsHistoryWrapper(base, 2), n_action_steps=3)
    env.reset()
    chunk = np.arange(8, dtype=np.float32).reshape(4, 2)  # T=4, only 3 are executed
    obs, reward, terminated, _, info = env.step(chunk)
    assert info["chunk_steps"] == 3 and reward == 3.0 and not terminated
    np.testing.assert_array_equal(np.stack(base.actions), chunk[:3])
    np.testing.assert_array_equal(obs["obs.state"][:, 0], [2, 3])


def test_chunk_stops_at_the_end_of_the_episode():
    base = CounterEnv(length=2)
    env = ActionChunkWrapper(ObsHistoryWrapper(base, 1), n_action_steps=4)
    env.reset()
    _, reward, terminated, _, info = env.step(np.zeros((4, 2), np.float32))
    assert terminated and info["chunk_steps"] == 2 and base.t == 2 and reward == 2.0


def test_chunk_shorter_than_n_action_steps_is_rejected():
    env = ActionChunkWrapper(ObsHistoryWrapper(CounterEnv(), 1), n_action_steps=4)
    env.reset()
    with pytest.raises(ValueError, match="chunk"):
        env.step(np.zeros((2, 2), np.float32))
