"""The layout of ``obs.privileged``: simulator ground truth for the scripted experts, one flat vector.

The env fills it (`envs.libero.env`, with `envs.libero.mechanisms` for joints and handles) and the
expert reads it back with `PrivilegedView`; both follow the task's `envs.libero.plan.TaskPlan`, whose
entities, mechanisms and steps fix the order of the blocks. Learned policies never read it and the demo
writer does not store it. Layout (all world frame, metres), zero-padded blocks:

    entities   MAX_ENTITIES x 13    position (3) and quaternion xyzw (4) of each plan entity, and the world-
                                    aligned box around it: centre relative to the position (3), half
                                    extents (3) (`envs.libero.entities`)
    mechanisms MAX_MECHANISMS x 14  handle position (3); unit direction in which the handle moves when the
                                    mechanism opens / turns on (3); a point on the joint's axis (3); the
                                    joint position (1, m or rad); unit long axis of the handle (3); 1.0 for
                                    a hinge (door, knob), 0.0 for a slide (drawer)
    satisfied  MAX_STEPS            1.0 where the plan step's BDDL predicate holds now (LIBERO's own check)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_ENTITIES = 6
MAX_MECHANISMS = 2
MAX_STEPS = 6
ENTITY_WIDTH = 13
MECHANISM_WIDTH = 14
PRIVILEGED_DIM = MAX_ENTITIES * ENTITY_WIDTH + MAX_MECHANISMS * MECHANISM_WIDTH + MAX_STEPS
_MECHANISMS_AT = MAX_ENTITIES * ENTITY_WIDTH
_STEPS_AT = _MECHANISMS_AT + MAX_MECHANISMS * MECHANISM_WIDTH


def pack(entities: np.ndarray, mechanisms: np.ndarray, satisfied: np.ndarray) -> np.ndarray:
    """entities (E, 7), mechanisms (M, 14), satisfied (S,) -> (PRIVILEGED_DIM,) float32, zero-padded."""
    out = np.zeros(PRIVILEGED_DIM, dtype=np.float32)
    entities, mechanisms = np.asarray(entities).reshape(-1), np.asarray(mechanisms).reshape(-1)
    if len(entities) > _MECHANISMS_AT or len(mechanisms) > _STEPS_AT - _MECHANISMS_AT or len(satisfied) > MAX_STEPS:
        raise ValueError(f"obs.privileged holds at most {MAX_ENTITIES} entities, {MAX_MECHANISMS} mechanisms "
                         f"and {MAX_STEPS} steps")
    out[:len(entities)] = entities
    out[_MECHANISMS_AT:_MECHANISMS_AT + len(mechanisms)] = mechanisms
    out[_STEPS_AT:_STEPS_AT + len(satisfied)] = satisfied
    return out


@dataclass(frozen=True)
class Mechanism:
    """One mechanism at one moment: handle (3,), opening direction (3,), axis point (3,), joint position,
    handle's long axis (3,), and whether the joint is a hinge (else a slide)."""

    handle: np.ndarray
    opening: np.ndarray
    anchor: np.ndarray
    joint: float
    handle_axis: np.ndarray
    hinged: bool


@dataclass(frozen=True)
class PrivilegedView:
    """``obs.privileged`` of one episode's observation window, split into its blocks.

    entities (To, MAX_ENTITIES, 13), mechanisms (To, MAX_MECHANISMS, 14), satisfied (To, MAX_STEPS) bool.
    """

    entities: np.ndarray
    mechanisms: np.ndarray
    satisfied: np.ndarray

    @classmethod
    def parse(cls, privileged: np.ndarray) -> "PrivilegedView":
        """privileged (To, PRIVILEGED_DIM) -> the view."""
        window = np.asarray(privileged, dtype=np.float64)
        if window.shape[-1] != PRIVILEGED_DIM:
            raise ValueError(f"obs.privileged has {window.shape[-1]} values, the layout {PRIVILEGED_DIM}")
        entities = window[:, :_MECHANISMS_AT].reshape(len(window), MAX_ENTITIES, ENTITY_WIDTH)
        mechanisms = window[:, _MECHANISMS_AT:_STEPS_AT].reshape(len(window), MAX_MECHANISMS, MECHANISM_WIDTH)
        return cls(entities, mechanisms, window[:, _STEPS_AT:] > 0.5)

    def position(self, entity: int, at: int = -1) -> np.ndarray:
        """(3,) position of entity row `entity` at window step `at` (default: the latest)."""
        return self.entities[at, entity, :3]

    def quaternion(self, entity: int, at: int = -1) -> np.ndarray:
        """(4,) quaternion xyzw of entity row `entity`."""
        return self.entities[at, entity, 3:7]

    def box(self, entity: int, at: int = -1) -> tuple[np.ndarray, np.ndarray]:
        """(low (3,), high (3,)) corners of the world-aligned box around entity row `entity`."""
        values = self.entities[at, entity]
        centre = values[:3] + values[7:10]
        return centre - values[10:13], centre + values[10:13]

    def mechanism(self, row: int, at: int = -1) -> Mechanism:
        values = self.mechanisms[at, row]
        return Mechanism(values[:3], values[3:6], values[6:9], float(values[9]), values[10:13], bool(values[13] > 0.5))
