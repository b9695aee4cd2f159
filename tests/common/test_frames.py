"""The frame check that keeps rendering garbage out of data and results."""

from __future__ import annotations

import numpy as np
import pytest

from common.frames import CorruptFrameError, check_frame, neighbour_difference


def test_uniform_noise_is_refused_with_the_source_named():
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert neighbour_difference(noise) > 80
    with pytest.raises(CorruptFrameError, match="camera corner gave a corrupt frame: noise"):
        check_frame(noise, "camera corner")


def test_a_smooth_picture_passes():
    rows = np.linspace(0, 255, 64, dtype=np.uint8)
    picture = np.stack([np.tile(rows[:, None], (1, 64))] * 3, axis=-1)  # a vertical gradient
    picture[20:40, 20:40] = (200, 30, 30)  # a red box with hard edges
    check_frame(picture, "camera corner")


def test_rendered_scenes_of_every_metaworld_camera_pass():
    from envs.config import EnvConfig
    from envs.registry import make_suite

    cameras = ["topview", "corner", "corner2", "corner3", "corner4", "behindGripper", "gripperPOV"]
    suite = make_suite(EnvConfig(suite="metaworld_mt10", cameras=cameras, image_size=32))
    env = suite.make_env(suite.tasks[2])
    try:
        obs, _ = env.reset(seed=0, options={"episode": 0})
        for camera in cameras:  # 32 pixels: the roughest frames (neighbours differ most)
            assert neighbour_difference(obs[f"obs.rgb.{camera}"].transpose(1, 2, 0)) < 25
    finally:
        env.close()
