"""Offscreen rendering: shapes, camera names, fast mode, and upright images."""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest

from common.frames import CorruptFrameError
from envs.rendering import CameraRenderer, select_gl_backend, upside_down_cameras

select_gl_backend()  # keeps MUJOCO_GL if set (conftest sets osmesa); must precede `import mujoco`

import mujoco  # noqa: E402

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
METAWORLD_CAMERAS = ["topview", "corner", "corner2", "corner3", "corner4", "behindGripper", "gripperPOV"]


@pytest.fixture(scope="module")
def scene():
    model = mujoco.MjModel.from_xml_string(SCENE)
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    return model, data


@pytest.fixture(scope="module")
def metaworld_push():
    """Meta-World push-v3 after reset: (model, data)."""
    import metaworld

    bench = metaworld.MT1("push-v3", seed=0)
    env = bench.train_classes["push-v3"]()
    env.set_task(bench.train_tasks[0])
    env.reset()
    yield env.model, env.data
    env.close()


def _centroid(image: np.ndarray, channel: int) -> tuple[float, float]:
    """(row, col) centre of the pixels of pure colour `channel` (0 red, 1 green, 2 blue)."""
    others = [c for c in range(3) if c != channel]
    mask = (image[..., channel] > 120) & (image[..., others].max(axis=-1) < 60)
    assert mask.sum() > 10, f"colour {channel} not visible"
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


@pytest.mark.parametrize("size", [(64, 64), (96, 128)])
def test_two_metaworld_cameras_give_upright_sized_images(metaworld_push, size):
    model, data = metaworld_push
    with CameraRenderer(model, ["corner", "topview"], *size) as renderer:
        images = renderer.render(data)
    assert list(images) == ["corner", "topview"]
    for image in images.values():
        assert image.shape == (*size, 3) and image.dtype == np.uint8
        assert image.std() > 10  # a scene, not a blank frame


def test_metaworld_corner_cameras_are_the_upside_down_ones(metaworld_push):
    model, _ = metaworld_push
    assert sorted(model.camera(i).name for i in range(model.ncam)) == sorted(METAWORLD_CAMERAS)
    assert upside_down_cameras(model) == {"corner", "corner2", "corner3", "corner4"}


@pytest.mark.parametrize("camera", ["corner", "corner2", "corner3", "corner4", "behindGripper"])
def test_metaworld_gripper_hangs_above_the_puck(metaworld_push, camera):
    """Puck (blue) moved right under the gripper (green): upright images show it lower."""
    model, data = metaworld_push
    model, data = copy.copy(model), _copy_state(model, data)  # the fixture stays untouched
    puck, pads = model.geom("objGeom").id, [model.geom(n).id for n in ("leftpad_geom", "rightpad_geom")]
    colour = {puck: (0, 0, 1, 1), **{pad: (0, 1, 0, 1) for pad in pads}}
    for geom, rgba in colour.items():
        model.geom_matid[geom], model.geom_rgba[geom] = -1, rgba  # materials would override rgba
    model.site_rgba[:, 3] = 0  # hide the green goal marker
    puck_qpos = model.jnt_qposadr[model.joint("objjoint").id]
    data.qpos[puck_qpos:puck_qpos + 2] = data.body("hand").xpos[:2]
    mujoco.mj_forward(model, data)
    assert data.body("hand").xpos[2] - data.body("obj").xpos[2] > 0.1
    with CameraRenderer(model, [camera], 192, 192) as renderer:
        image = renderer.render(data)[camera]
    green_row, _ = _centroid(image, 1)
    blue_row, _ = _centroid(image, 2)
    assert green_row < blue_row


def test_unknown_camera_lists_the_known_ones(metaworld_push):
    model, _ = metaworld_push
    with pytest.raises(ValueError, match="corner2.*gripperPOV|gripperPOV.*corner2"):
        CameraRenderer(model, ["corner", "nope"], 32, 32)


@pytest.mark.parametrize("which", ["scene", "metaworld_push"])
def test_fast_mode_changes_pixels_but_not_geometry(which, request):
    model, data = request.getfixturevalue(which)
    camera = "level" if which == "scene" else "corner"
    with CameraRenderer(model, [camera], 64, 64, fast=True) as fast, \
            CameraRenderer(model, [camera], 64, 64, fast=False) as full:
        a, b = fast.render(data)[camera], full.render(data)[camera]
    assert a.shape == b.shape == (64, 64, 3)
    changed = (np.abs(a.astype(int) - b.astype(int)) > 20).any(axis=-1)
    assert changed.sum() > 20  # shadows (and reflections) gone
    if which == "scene":
        assert abs(np.subtract(_centroid(a, 0), _centroid(b, 0))).max() < 1.0  # the box is where it was


def test_image_larger_than_the_offscreen_buffer_leaves_the_model_unchanged(scene):
    model, data = scene
    before = (model.vis.global_.offwidth, model.vis.global_.offheight, model.vis.quality.offsamples)
    with CameraRenderer(model, ["level"], 720, 800) as renderer:
        assert renderer.render(data)["level"].shape == (720, 800, 3)
    assert (model.vis.global_.offwidth, model.vis.global_.offheight, model.vis.quality.offsamples) == before


def test_closing_one_renderer_leaves_another_live_renderer_intact(scene):
    """A worker evicting an idle env closes its renderer while another env's context is current."""
    model, data = scene
    with CameraRenderer(model, ["level"], 64, 64) as kept:
        before = kept.render(data)["level"]
        closed = CameraRenderer(model, ["rolled"], 64, 64)
        closed.render(data)
        kept.render(data)  # the kept renderer's context is the current one when the other closes
        closed.close()
        after = kept.render(data)["level"]
        kept.verify()
    np.testing.assert_array_equal(after, before)


def test_a_renderer_whose_framebuffers_were_freed_fails_verification(scene):
    """mujoco.Renderer.close() alone frees its GL objects in the current context: the other renderer's."""
    model, data = scene
    with CameraRenderer(model, ["level"], 64, 64) as victim:
        victim.verify()
        culprit = mujoco.Renderer(model, 64, 64)
        culprit.update_scene(data, "rolled")
        culprit.render()
        victim.render(data)
        culprit.close()
        with pytest.raises(CorruptFrameError, match="camera level"):
            victim.verify()


def test_select_gl_backend_keeps_an_explicit_choice(monkeypatch):
    monkeypatch.setenv("MUJOCO_GL", "egl")
    monkeypatch.delenv("PYOPENGL_PLATFORM", raising=False)
    assert select_gl_backend() == "egl"
    assert os.environ["PYOPENGL_PLATFORM"] == "egl"


@pytest.mark.parametrize("nodes, expected", [(["nvidia0", "nvidiactl"], "egl"), (["nvidiactl", "dri"], "osmesa"),
                                              ([], "osmesa")])
def test_select_gl_backend_picks_egl_only_with_an_nvidia_gpu(monkeypatch, tmp_path, nodes, expected):
    """A machine's /dev as seen by the code: a GPU node (nvidia<N>) means EGL; the control node alone does not."""
    for node in nodes:
        (tmp_path / node).touch()
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.delenv("PYOPENGL_PLATFORM", raising=False)
    assert select_gl_backend(tmp_path) == expected
    assert os.environ["MUJOCO_GL"] == os.environ["PYOPENGL_PLATFORM"] == expected


def _copy_state(model: mujoco.MjModel, data: mujoco.MjData) -> mujoco.MjData:
    """A fresh MjData at the same state, positions computed."""
    state = mujoco.MjData(model)
    state.qpos[:], state.mocap_pos[:], state.mocap_quat[:] = data.qpos, data.mocap_pos, data.mocap_quat
    mujoco.mj_forward(model, state)
    return state
