"""What a policy is built for, read from the data: dimensions, cameras and the task table.

The spec and the config together rebuild a policy exactly; a checkpoint stores both as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from common.schema import Task


@dataclass
class PolicySpec:
    """Attributes:
        state_dim: Ds.
        action_dim: Da.
        image_shapes: camera -> (3, H, W) of its frames; empty for state-only policies.
        tasks: the training task table; ``tasks[i].index == i``.
    """

    state_dim: int
    action_dim: int
    tasks: list[Task]
    image_shapes: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if [t.index for t in self.tasks] != list(range(len(self.tasks))):
            raise ValueError(f"task indices must be 0..{len(self.tasks) - 1} in order, got "
                             f"{[t.index for t in self.tasks]}")

    @property
    def cameras(self) -> list[str]:
        return list(self.image_shapes)

    def to_dict(self) -> dict[str, Any]:
        return {"state_dim": self.state_dim, "action_dim": self.action_dim,
                "image_shapes": {c: list(s) for c, s in self.image_shapes.items()},
                "tasks": [t.to_dict() for t in self.tasks]}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> "PolicySpec":
        return cls(state_dim=int(record["state_dim"]), action_dim=int(record["action_dim"]),
                   tasks=[Task.from_dict(t) for t in record["tasks"]],
                   image_shapes={c: tuple(int(n) for n in s) for c, s in record["image_shapes"].items()})
