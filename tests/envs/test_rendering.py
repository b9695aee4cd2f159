"""Offscreen rendering: shapes, camera names, fast mode, and upright images."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from envs.rendering import CameraRenderer, select_gl_backend

# A red box floats above a green floor; a blue ball sits at world +x. Both cameras look along
# +y; "rolled" is mounted upside down (its up axis points to world -z).
SCENE = """
<mujoco>
  <worldbody>
    <light pos="0 -2 3" dir="0 0.5 -1"/>
    <geom type="plane" size="3 3 0.1" rgba="0 1 0 1"/>
    <geom type="box" pos="0 0 1.2" size="0.3 0.3 0.3" rgba="1 0 0 1"/>
    <geom type="sphere" pos="0.9 0 0.6" size="0.2" rgba="0 0 1 1"/>
    <camera name="level" pos="0 -4 0.8" xyaxes="1 0 0 0 0 1"/>
    <camera name="rolled" pos="0 -4 0.8" xyaxes="-1 0 0 0 0 -1"/>
  </worldbody>
</mujoco>
"""


@pytest.fixture(scope="module")
def scene():
    select_gl_backend()
    model = mujoco.MjModel.from_xml_string(SCENE)
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    return model, data


def _centroid(image: np.ndarray, channel: int) -> tuple[float, float]:
    others = [c for c in range(3) if c != channel]
    mask = (image[..., channel] > 150) & (image[..., others].max(axis=-1) < 100)
    assert mask.sum() > 20, f"colour {channel} not visible"
    rows, cols = np.nonzero(mask)
    return rows.mean(), cols.mean()


@pytest.mark.parametrize("camera", ["level", "rolled"])
def test_images_are_upright_and_not_mirrored(scene, camera):
    model, data = scene
    with CameraRenderer(model, [camera], 96, 128) as renderer:
        image = renderer.render(data)[camera]
    assert image.shape == (96, 128, 3) and image.dtype == np.uint8
    red_row, _ = _centroid(image, 0)
    green_row, _ = _centroid(image, 1)
    _, blue_col = _centroid(image, 2)
    assert red_row < green_row  # the box above the floor: up is up
    assert blue_col > 64  # world +x on the right: turned, not mirrored


def test_unknown_camera_lists_the_known_ones(scene):
    model, _ = scene
    with pytest.raises(ValueError, match="level"):
        CameraRenderer(model, ["nope"], 32, 32)


def test_fast_mode_changes_pixels_but_not_geometry(scene):
    model, data = scene
    with CameraRenderer(model, ["level"], 64, 64, fast=True) as fast, \
            CameraRenderer(model, ["level"], 64, 64, fast=False) as full:
        a, b = fast.render(data)["level"], full.render(data)["level"]
    assert not np.array_equal(a, b)  # shadows are gone
    assert abs(np.subtract(_centroid(a, 0), _centroid(b, 0))).max() < 1.0  # the box is where it was


def test_image_larger_than_the_default_offscreen_buffer(scene):
    model, data = scene
    with CameraRenderer(model, ["level"], 720, 800) as renderer:
        assert renderer.render(data)["level"].shape == (720, 800, 3)
