"""Drawers, doors and knobs of a LIBERO scene as the scripted experts see them: a handle that moves.

`MechanismProbe` finds, once per scene, the joint that opens a plan's mechanism (a drawer region's
slide, the microwave door's hinge, the stove knob's hinge) and the geom to take it by: the collision geom
of the moving body that travels furthest when it opens (a drawer's handle bar, the door's handle bar, the
tip of the knob's fin). Every step it reports, in world coordinates, where that handle is, in which
direction it moves when the mechanism opens (or turns on), a point on the joint's axis, the joint's
position, the handle's long axis and whether the joint is a hinge (`envs.libero.privileged` lays them out).
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from envs.libero.privileged import MECHANISM_WIDTH


def joint_names(libero_env: Any, name: str) -> list[str]:
    """The MuJoCo joints LIBERO's Open/Close/TurnOn predicates read for entity `name`."""
    if name in libero_env.object_sites_dict:
        return list(libero_env.object_sites_dict[name].joints or [])
    return list(libero_env.get_object(name).joints or [])


def opening_sign(fixture: Any) -> float:
    """+1 if the joint position grows when the fixture opens (or turns on), -1 if it shrinks."""
    ranges = fixture.object_properties["articulation"]
    opened = ranges.get("default_open_ranges") or ranges.get("default_turnon_ranges")
    closed = ranges.get("default_close_ranges") or ranges.get("default_turnoff_ranges")
    if not opened or not closed:
        raise ValueError(f"{fixture.name}: no open/close (or turn-on/off) ranges to tell its direction")
    return 1.0 if np.mean(opened) > np.mean(closed) else -1.0


class MechanismProbe:
    """One mechanism of a scene (see the module docstring); `observe` -> (MECHANISM_WIDTH,) = (14,)."""

    def __init__(self, libero_env: Any, name: str, fixture_name: str):
        model = libero_env.sim.model._model
        joints = joint_names(libero_env, name)
        if len(joints) != 1:
            raise ValueError(f"{name}: expected one joint, found {joints}")
        self.model, self.name = model, name
        self.joint = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, joints[0])
        self.qpos_address = int(model.jnt_qposadr[self.joint])
        self.body = int(model.jnt_bodyid[self.joint])
        self.sliding = model.jnt_type[self.joint] == mujoco.mjtJoint.mjJNT_SLIDE
        self.sign = opening_sign(libero_env.get_object(fixture_name))
        self.handle_geom = self._handle_geom(libero_env.sim.data._data)

    def _axis(self, data: mujoco.MjData) -> tuple[np.ndarray, np.ndarray]:
        """(anchor (3,), unit axis (3,)) of the joint, world frame."""
        return data.xanchor[self.joint].copy(), data.xaxis[self.joint].copy()

    def _opening_direction(self, data: mujoco.MjData, point: np.ndarray) -> np.ndarray:
        anchor, axis = self._axis(data)
        direction = axis if self.sliding else np.cross(axis, point - anchor)
        norm = np.linalg.norm(direction)
        return self.sign * direction / norm if norm > 1e-9 else np.zeros(3)

    def _handle_geom(self, data: mujoco.MjData) -> int:
        geoms = [g for g in range(self.model.ngeom) if self.model.geom_bodyid[g] == self.body
                 and (self.model.geom_contype[g] or self.model.geom_conaffinity[g])]
        if not geoms:
            raise ValueError(f"{self.name}: the moving body has no collision geom to take it by")
        anchor, axis = self._axis(data)

        def reach(geom: int) -> float:
            offset = data.geom_xpos[geom] - anchor
            if self.sliding:
                return float(offset @ (self.sign * axis))
            return float(np.linalg.norm(offset - (offset @ axis) * axis))  # distance from the hinge axis

        return max(geoms, key=reach)

    def _handle_axis(self, data: mujoco.MjData) -> np.ndarray:
        """(3,) unit long axis of the handle geom: a capsule's or cylinder's axis, a box's longest side."""
        frame = data.geom_xmat[self.handle_geom].reshape(3, 3)
        if self.model.geom_type[self.handle_geom] in (mujoco.mjtGeom.mjGEOM_CAPSULE, mujoco.mjtGeom.mjGEOM_CYLINDER):
            return frame[:, 2].copy()
        return frame[:, int(np.argmax(self.model.geom_size[self.handle_geom]))].copy()

    def observe(self, data: mujoco.MjData) -> np.ndarray:
        """(14,): handle position, opening direction at the handle, axis point, joint position, handle axis,
        hinge flag."""
        handle = data.geom_xpos[self.handle_geom].copy()
        anchor, _ = self._axis(data)
        out = np.concatenate([handle, self._opening_direction(data, handle), anchor,
                              [data.qpos[self.qpos_address]], self._handle_axis(data), [0.0 if self.sliding else 1.0]])
        assert out.shape == (MECHANISM_WIDTH,)
        return out
