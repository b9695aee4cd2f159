"""MuJoCo offscreen rendering: GL backend choice and a multi-camera renderer.

Two rules make rendering work in a multi-process evaluation:

1. The GL backend is fixed when `mujoco` is first imported in a process, so
   `select_gl_backend()` must run before that (see its docstring). This module imports
   `mujoco` lazily, so importing `select_gl_backend` from here is always early enough.
2. GL contexts never cross a `fork`: build a `CameraRenderer` inside the worker process
   that uses it, never in the parent.

Images are (H, W, 3) uint8, row 0 at the top ("upright"), as every image in this project.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from common.frames import CorruptFrameError, check_frame

if TYPE_CHECKING:
    import mujoco

log = logging.getLogger(__name__)

# PyOpenGL must load the same platform as MuJoCo's GL context.
_PYOPENGL_PLATFORM = {"egl": "egl", "osmesa": "osmesa"}


def select_gl_backend(device_dir: Path = Path("/dev")) -> str:
    """Choose MuJoCo's offscreen GL backend and export it to this process's environment.

    Keeps `MUJOCO_GL` when already set (the user's override); otherwise "egl" when an
    NVIDIA GPU device node is visible (`nvidia0`, ... in `device_dir`), else "osmesa" (CPU,
    Debian package libosmesa6). Also sets the matching `PYOPENGL_PLATFORM` unless already set.

    When it takes effect: mujoco 3.3 reads `MUJOCO_GL` once, in `mujoco/gl_context.py`,
    which `import mujoco` runs; the chosen backend module then imports PyOpenGL, which
    reads `PYOPENGL_PLATFORM` at its own first import. So call this before the first
    `import mujoco` (and `import OpenGL`) of a process. Worker processes started
    afterwards inherit the variables, and with the "spawn" or "forkserver" start methods
    they import mujoco afresh, so the choice applies to them even when the parent had
    already imported mujoco. It creates no GL context: contexts belong in the workers.

    Returns:
        The backend name, e.g. "egl" or "osmesa".
    """
    backend = os.environ.get("MUJOCO_GL")
    if backend is None:
        backend = "egl" if any(Path(device_dir).glob("nvidia[0-9]*")) else "osmesa"
        os.environ["MUJOCO_GL"] = backend
        if "mujoco" in sys.modules:
            log.warning(
                "MUJOCO_GL=%s was set after mujoco was imported: it applies to worker "
                "processes started from now on, not to this one.",
                backend,
            )
    backend = backend.lower().strip()
    if backend in _PYOPENGL_PLATFORM:
        os.environ.setdefault("PYOPENGL_PLATFORM", _PYOPENGL_PLATFORM[backend])
    return backend


_LOOKS = ("geom_rgba", "site_rgba", "mat_rgba")  # what tasks may change in a model's appearance


def _looks(model: "mujoco.MjModel") -> dict[str, np.ndarray]:
    """Copies of the model's colours, which tasks may change while it is rendered."""
    return {name: getattr(model, name).copy() for name in _LOOKS}


def _set_looks(model: "mujoco.MjModel", looks: dict[str, np.ndarray]) -> None:
    for name, values in looks.items():
        getattr(model, name)[:] = values


def upside_down_cameras(model: mujoco.MjModel) -> set[str]:
    """Names of the cameras whose image "up" axis points below the horizon.

    A camera's image up is its local y axis. Meta-World's `corner`, `corner2`, `corner3`
    and `corner4` are defined with y pointing down (world z component -0.96, -0.87,
    -0.53, -0.87), i.e. rolled by 180 degrees: rendered as is, the robot hangs from the
    ceiling. `topview` (up = world +y), `behindGripper` and `gripperPOV` are fine.
    The rule is evaluated once, at the model's reference pose (qpos0), so a camera on a
    moving body never flips in the middle of an episode.
    """
    import mujoco

    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    mujoco.mj_camlight(model, data)  # camera poses are not part of mj_kinematics
    up_z = data.cam_xmat.reshape(-1, 3, 3)[:, 2, 1]  # world z of each camera's y axis
    return {model.camera(i).name for i in np.flatnonzero(up_z < -1e-6)}


class CameraRenderer:
    """Renders named cameras of one MuJoCo model into upright (H, W, 3) uint8 images.

    One `mujoco.Renderer` (one GL context) is shared by all cameras. Cameras listed by
    `upside_down_cameras(model)` are rotated by 180 degrees (not mirrored: a rolled
    camera's true view is the 180-degree rotation), so every image is upright; the set
    is in `self.rotated_cameras` and logged.

    `fast=True` trades looks for speed on software (OSMesa) rendering: no shadows, no
    reflections, and no multisample anti-aliasing in the offscreen buffer: about an order of
    magnitude faster with OSMesa (`python -m bench.render_fps`; docs/benchmarks.md).

    `hidden_geom_groups` are left out of the images, e.g. (0,) for robosuite scenes, whose
    collision geoms (group 0) robosuite's own cameras never show (``render_collision_mesh=False``).

    The model's offscreen buffer (`model.vis.global_.offwidth/offheight`) is enlarged
    for the GL context when smaller than (width, height); the model is left as it was.

    Two guards keep garbage out of data and results (`common.frames.CorruptFrameError`): every
    frame must not be noise, and `verify()` re-renders the model's reference pose (qpos0), which
    must give exactly the images rendered at construction. Envs call `verify()` at every reset and
    at the end of every episode, so a renderer whose GL objects were freed fails the episode (an
    error record) instead of writing noise or a wrong picture into a demonstration or a video.

    Usage (in the process that renders):
        with CameraRenderer(env.model, ["corner", "topview"], 128, 128) as renderer:
            images = renderer.render(env.data)  # {"corner": (H, W, 3) uint8, ...}
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        cameras: Sequence[str],
        height: int,
        width: int,
        fast: bool = True,
        hidden_geom_groups: Sequence[int] = (),
    ) -> None:
        import mujoco

        names = [model.camera(i).name for i in range(model.ncam)]
        unknown = [c for c in cameras if c not in names]
        if unknown:
            raise ValueError(f"Unknown camera(s) {unknown}; the model has cameras {names}")
        if not cameras:
            raise ValueError(f"No camera given; the model has cameras {names}")
        self.cameras = list(cameras)
        self.fast = fast
        self.rotated_cameras = upside_down_cameras(model) & set(cameras)
        if self.rotated_cameras:
            log.info("Rotating by 180 degrees (upside-down definitions): %s",
                     sorted(self.rotated_cameras))
        self._renderer = _make_renderer(model, height, width, no_msaa=fast)
        self._options = mujoco.MjvOption()
        for group in hidden_geom_groups:
            self._options.geomgroup[group] = 0
        if fast:
            flags = self._renderer.scene.flags
            flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
            flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
        # Rendering reads only the pose in MjData (positions are not recomputed) and the model's looks.
        # Some tasks change looks on purpose (LIBERO shows a stove's burner once it is turned on, by
        # its site's alpha): verify() renders the reference pose with the looks of construction time,
        # so the reference frames stay the same for the renderer's life.
        self._model = model
        self._reference_looks = _looks(model)
        self._reference_pose = mujoco.MjData(model)
        mujoco.mj_forward(model, self._reference_pose)
        self._reference = self.render(self._reference_pose)

    def verify(self) -> None:
        """Raise CorruptFrameError unless the reference pose renders exactly as it did at construction."""
        current = _looks(self._model)
        _set_looks(self._model, self._reference_looks)
        try:
            images = self.render(self._reference_pose)
        finally:
            _set_looks(self._model, current)
        for camera, image in images.items():
            if not np.array_equal(image, self._reference[camera]):
                difference = np.abs(image.astype(np.int16) - self._reference[camera]).mean()
                raise CorruptFrameError(f"camera {camera} no longer renders its reference frame (mean difference "
                                        f"{difference:.1f} levels): its GL objects were freed or overwritten")

    def render(self, data: mujoco.MjData) -> dict[str, np.ndarray]:
        """Render every camera at the state in `data`.

        Returns:
            {camera name: (H, W, 3) uint8 upright image}, in the order of `cameras`.

        Raises:
            common.frames.CorruptFrameError: a frame is noise (the GL objects behind it were freed), so
                that garbage never becomes demonstration data, a policy input or a video frame.
        """
        images = {}
        for camera in self.cameras:
            self._renderer.update_scene(data, camera, scene_option=self._options)
            image = self._renderer.render()
            check_frame(image, f"camera {camera}")
            images[camera] = image[::-1, ::-1].copy() if camera in self.rotated_cameras else image
        return images

    def close(self) -> None:
        """Free the GL objects and the GL context; safe to call twice."""
        free_renderer(self._renderer)

    def __enter__(self) -> CameraRenderer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def free_renderer(renderer: mujoco.Renderer) -> None:
    """Close a `mujoco.Renderer` without touching any other renderer's GL objects.

    `mujoco.Renderer.close()` (mujoco 3.3) destroys its GL context first and then frees its
    framebuffers and textures (`mjr_freeContext`) in whatever context is current at that moment:
    with a second renderer alive in the process, that is the other renderer's context, whose objects
    carry the same ids, so the other renderer loses its framebuffers and renders noise from then on.
    Here the renderer's own context is made current, its GL objects are freed in it, and only then is
    the context destroyed.
    """
    gl_context = getattr(renderer, "_gl_context", None)
    mjr_context = getattr(renderer, "_mjr_context", None)
    if gl_context is not None and mjr_context is not None:
        gl_context.make_current()
        mjr_context.free()
        renderer._mjr_context = None
    renderer.close()  # destroys the context (and releases it if current); the GL objects are gone already


def _make_renderer(model: mujoco.MjModel, height: int, width: int, no_msaa: bool):
    """A `mujoco.Renderer` whose GL buffers are built from temporarily adjusted settings.

    MuJoCo sizes the offscreen framebuffer and its sample count from `model.vis` when the
    render context is created, so the settings are changed for construction only.
    """
    import mujoco

    vis = model.vis
    saved = (vis.global_.offwidth, vis.global_.offheight, vis.quality.offsamples)
    try:
        vis.global_.offwidth = max(width, saved[0])
        vis.global_.offheight = max(height, saved[1])
        if no_msaa:
            vis.quality.offsamples = 0
        return mujoco.Renderer(model, height=height, width=width)
    finally:
        vis.global_.offwidth, vis.global_.offheight, vis.quality.offsamples = saved
