"""Offscreen MuJoCo rendering: GL backend choice and a fast multi-camera renderer.

GL rule: mujoco reads ``MUJOCO_GL`` when it is first imported, so `select_gl_backend` must run
before that in every process (the `envs` package calls it on import; spawned workers inherit
the variable). It only sets environment variables and never creates a GL context: contexts
are created lazily inside the worker processes, never before a fork.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def select_gl_backend() -> str:
    """Keep ``MUJOCO_GL`` if set; else "egl" when an NVIDIA GPU is visible, else "osmesa" (CPU)."""
    backend = os.environ.get("MUJOCO_GL")
    if not backend:
        backend = "egl" if Path("/dev/nvidia0").exists() else "osmesa"
        os.environ["MUJOCO_GL"] = backend
    if backend in ("egl", "osmesa"):
        os.environ.setdefault("PYOPENGL_PLATFORM", backend)
    return backend


class CameraRenderer:
    """Renders named cameras of one MuJoCo model to upright (H, W, 3) uint8 images.

    Upright means world "up" points to the top of the image. A camera mounted upside down
    (its up axis points below the horizon, as Meta-World's corner cameras do) is turned half a
    turn, which is what a real camera rolled by 180 degrees needs (a vertical flip alone would
    mirror the scene left-right). This is checked at every render, so tracking cameras work too.

    ``fast=True`` switches off shadows and reflections: the same geometry, about 4x cheaper on
    a CPU (OSMesa). One GL context serves all cameras; it is created here, so build the
    renderer inside the process that uses it.
    """

    def __init__(self, model, cameras: Sequence[str], height: int, width: int, fast: bool = True):
        import mujoco

        names = [model.camera(i).name for i in range(model.ncam)]
        unknown = [c for c in cameras if c not in names]
        if unknown:
            raise ValueError(f"unknown camera(s) {unknown}; this model has: {names}")
        # The offscreen buffer bounds the image size; grow it rather than fail.
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, height)
        self.cameras = list(cameras)
        self._camera_ids = {c: names.index(c) for c in cameras}
        self._renderer = mujoco.Renderer(model, height=height, width=width)
        if fast:
            flags = self._renderer.scene.flags
            flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
            flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False

    def render(self, data) -> dict[str, np.ndarray]:
        """camera name -> (H, W, 3) uint8, upright (mujoco.Renderer flips OpenGL's rows)."""
        images = {}
        for camera in self.cameras:
            self._renderer.update_scene(data, camera=camera)
            image = self._renderer.render()
            up_z = data.cam_xmat[self._camera_ids[camera]][7]  # world z of the camera's up (y) axis
            images[camera] = np.ascontiguousarray(image[::-1, ::-1] if up_z < 0 else image)
        return images

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __enter__(self) -> "CameraRenderer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
