"""Shared test set-up: CPU rendering, small configs."""

from __future__ import annotations

import os

# Rendering on CPU; must be set before mujoco is imported anywhere in the test process.
os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
