"""Objects, fixtures and region sites of a LIBERO scene as the scripted experts see them: a pose and a box.

`EntityProbe` reports, every step, an entity's world position and orientation and the world-aligned box
around it: for an object or fixture, the box around its collision geoms (computed once in the body's own
frame, turned with the body every step); for a region site, the box LIBERO's own In / On checks use
(``abs(site rotation @ site size)``). `envs.libero.privileged` lays the values out.
"""

from __future__ import annotations

import itertools
from typing import Any

import mujoco
import numpy as np
from scipy.spatial.transform import Rotation

from envs.libero.privileged import ENTITY_WIDTH


def _descends_from(model: mujoco.MjModel, body: int, ancestor: int) -> bool:
    while body not in (0, ancestor):
        body = int(model.body_parentid[body])
    return body == ancestor


def local_box(model: mujoco.MjModel, data: mujoco.MjData, body: int) -> tuple[np.ndarray, np.ndarray]:
    """(centre (3,), half extents (3,)) of the box around `body`'s collision geoms (its own and its
    descendants'), in the body's frame."""
    frame, origin = data.xmat[body].reshape(3, 3), data.xpos[body]
    corners = []
    for geom in range(model.ngeom):
        collides = model.geom_contype[geom] or model.geom_conaffinity[geom]
        if not collides or not _descends_from(model, int(model.geom_bodyid[geom]), body):
            continue
        centre, half = model.geom_aabb[geom][:3], model.geom_aabb[geom][3:]
        rotation = data.geom_xmat[geom].reshape(3, 3)
        for signs in itertools.product((-1.0, 1.0), repeat=3):
            world = data.geom_xpos[geom] + rotation @ (centre + np.array(signs) * half)
            corners.append(frame.T @ (world - origin))
    if not corners:
        return np.zeros(3), np.zeros(3)
    corners = np.array(corners)
    low, high = corners.min(axis=0), corners.max(axis=0)
    return (low + high) / 2, (high - low) / 2


class EntityProbe:
    """One plan entity of a scene; `observe` -> (ENTITY_WIDTH,) = position (3), quaternion xyzw (4), box
    centre relative to the position (3) and box half extents (3), world frame."""

    def __init__(self, libero_env: Any, name: str):
        self.libero_env, self.name = libero_env, name
        self.site = name in libero_env.object_sites_dict
        model, data = libero_env.sim.model._model, libero_env.sim.data._data
        if self.site:
            self.site_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, name)
            self.site_size = np.asarray(libero_env.object_sites_dict[name].size, dtype=np.float64)
        else:
            self.body = int(libero_env.obj_body_id[name])
            self.box_centre, self.box_half = local_box(model, data, self.body)

    def observe(self) -> np.ndarray:
        data = self.libero_env.sim.data._data
        if self.site:
            frame = data.site_xmat[self.site_id].reshape(3, 3)
            values = [data.site_xpos[self.site_id], Rotation.from_matrix(frame).as_quat(), np.zeros(3),
                      np.abs(frame @ self.site_size)]
        else:
            frame = data.xmat[self.body].reshape(3, 3)
            w, x, y, z = data.xquat[self.body]  # MuJoCo's quaternions are wxyz
            values = [data.xpos[self.body], [x, y, z, w], frame @ self.box_centre, np.abs(frame) @ self.box_half]
        out = np.concatenate(values)
        assert out.shape == (ENTITY_WIDTH,)
        return out
