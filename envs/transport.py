"""Observations and actions between a worker and the engine through shared memory, not pickled per step.

Each env slot of a worker has one block of shared memory holding its observation window (every key of the
obs dict, (To, ...) arrays) and its action chunk (Ta, Da). The worker creates it when the slot first has an
observation (`SlotBuffers`), sends its layout once, and from then on only writes into it; the engine attaches
(`SlotViews`), reads the window as numpy views and writes the chunk in place. Messages then carry only
small tuples (the slot, steps done, a record at the end of an episode).

Turn-taking makes it safe without locks: the worker writes a slot's observation only while it handles a
command for that slot, and the engine sends the next command for the slot only after it has copied the
observation into its policy batch and written the chunk.

The worker owns its blocks and unlinks them when it closes; the engine unlinks the blocks of a worker that
died (it knows their names from the layouts), so a crash leaks no segment.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from multiprocessing import shared_memory
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

ACTION = "__action__"  # the chunk's entry in a layout


@dataclass(frozen=True)
class Layout:
    """Where each array of a slot lives in its block: name -> (offset, shape, dtype)."""

    block: str  # the shared-memory segment's name
    arrays: tuple[tuple[str, int, tuple[int, ...], str], ...]

    @property
    def size(self) -> int:
        return max(offset + int(np.prod(shape)) * np.dtype(dtype).itemsize for _, offset, shape, dtype in self.arrays)

    def matches(self, obs: dict[str, np.ndarray]) -> bool:
        shapes = {name: (shape, dtype) for name, _, shape, dtype in self.arrays if name != ACTION}
        return shapes == {k: (tuple(np.shape(v)), np.asarray(v).dtype.str) for k, v in obs.items()}


def _views(memory: shared_memory.SharedMemory, layout: Layout) -> dict[str, np.ndarray]:
    return {name: np.ndarray(shape, dtype=np.dtype(dtype), buffer=memory.buf, offset=offset)
            for name, offset, shape, dtype in layout.arrays}


class SlotBuffers:
    """Worker side: the block of one slot, created for the shapes of a first observation and an action chunk."""

    def __init__(self, obs: dict[str, np.ndarray], action_shape: tuple[int, ...], action_dtype: np.dtype):
        arrays, offset = [], 0
        for name, value in [*((k, np.asarray(v)) for k, v in obs.items()),
                            (ACTION, np.zeros(action_shape, action_dtype))]:
            offset = -(-offset // 64) * 64  # each array 64-byte aligned
            arrays.append((name, offset, tuple(value.shape), value.dtype.str))
            offset += value.nbytes
        self.memory = shared_memory.SharedMemory(create=True, size=max(offset, 1))
        self.layout = Layout(self.memory.name, tuple(arrays))
        self.views = _views(self.memory, self.layout)

    def write_obs(self, obs: dict[str, np.ndarray]) -> None:
        for key, value in obs.items():
            self.views[key][...] = value

    def action(self) -> np.ndarray:
        return self.views[ACTION].copy()

    def close(self) -> None:
        self.views = {}
        self.memory.close()
        self.memory.unlink()


class SlotViews:
    """Engine side: a slot's block attached by its layout; `obs` are live views, read before the next command."""

    def __init__(self, layout: Layout):
        self.layout = layout
        self.memory = shared_memory.SharedMemory(name=layout.block)  # the workers share the engine's tracker
        views = _views(self.memory, layout)
        self.action_view = views.pop(ACTION)
        self.obs: dict[str, np.ndarray] = views

    def write_action(self, chunk: np.ndarray) -> None:
        """Write the executed part of a chunk (Ta, Da); a chunk of another shape is refused, naming both."""
        if chunk.shape != self.action_view.shape:
            raise ValueError(f"the policy's executed actions have shape {chunk.shape}; the env takes "
                             f"{self.action_view.shape} (n_action_steps, action dim)")
        self.action_view[...] = chunk

    def close(self, unlink: bool = False) -> None:
        """Detach; `unlink` also removes the block (its worker died and cannot)."""
        self.obs, self.action_view = {}, None
        self.memory.close()
        if unlink:
            unlink_block(self.layout.block)


def unlink_block(name: str) -> None:
    """Remove a shared-memory block by name, if it still exists."""
    try:
        memory = shared_memory.SharedMemory(name=name)
    except FileNotFoundError:
        return
    memory.close()
    memory.unlink()  # also unregisters it from this process's resource tracker


def obs_copy(obs: dict[str, Any]) -> dict[str, np.ndarray]:
    """A copy of an observation window, for callers that keep it past the next command."""
    return {k: np.array(v) for k, v in obs.items()}
