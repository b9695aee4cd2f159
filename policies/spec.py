"""What a policy is built for, read from the data: dimensions, cameras and the task table.

The spec and the config together rebuild a policy exactly; a checkpoint stores both as JSON.

A policy trained on several suites at once (e.g. Meta-World MT10 and LIBERO-Object) has one spec for all
of them (`PolicySpec.across_suites`): one task table, state and action padded to the largest suite's
(zeros), the cameras of every suite, and per suite (`suites`) the dimensions and cameras that are its own.
The policy never reads or is graded on the rest (`policies.base`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from common.schema import Task


@dataclass
class SuiteShape:
    """One suite of a policy trained across suites: what its observations fill and its actions use.

    Attributes:
        name: the suite's registry name (`Task.suite` of its tasks), e.g. ``libero_object``.
        state_dim: its Ds: obs.state fills dimensions 0..state_dim-1 of the padded state.
        action_dim: its Da: actions 0..action_dim-1 of the padded chunk are its own.
        cameras: the cameras its envs render (a subset of the spec's).
    """

    name: str
    state_dim: int
    action_dim: int
    cameras: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "state_dim": self.state_dim, "action_dim": self.action_dim,
                "cameras": list(self.cameras)}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> "SuiteShape":
        return cls(str(record["name"]), int(record["state_dim"]), int(record["action_dim"]),
                   [str(c) for c in record["cameras"]])


@dataclass
class PolicySpec:
    """Attributes:
        state_dim: Ds (across suites: the largest suite's).
        action_dim: Da (across suites: the largest suite's).
        image_shapes: camera -> (3, H, W) of its frames; empty for state-only policies.
        tasks: the training task table; ``tasks[i].index == i``.
        suites: across suites, each suite's own dimensions and cameras, in the order of `suite.index`;
            empty for a policy of one suite (its tasks fill the whole spec).
    """

    state_dim: int
    action_dim: int
    tasks: list[Task]
    image_shapes: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    suites: list[SuiteShape] = field(default_factory=list)

    def __post_init__(self) -> None:
        if [t.index for t in self.tasks] != list(range(len(self.tasks))):
            raise ValueError(f"task indices must be 0..{len(self.tasks) - 1} in order, got "
                             f"{[t.index for t in self.tasks]}")
        if self.suites:
            self._check_suites()

    def _check_suites(self) -> None:
        names = [s.name for s in self.suites]
        if len(set(names)) != len(names):
            raise ValueError(f"suites must be named once each, got {names}")
        strangers = sorted({t.suite for t in self.tasks} - set(names))
        if strangers:
            raise ValueError(f"tasks of suites {strangers} are in the task table but not in suites {names}")
        task_names = [t.name for t in self.tasks]
        twice = sorted({n for n in task_names if task_names.count(n) > 1})
        if twice:
            raise ValueError(f"task names {twice} appear in more than one suite; a policy across suites tells "
                             "tasks apart by name")
        for suite in self.suites:
            if suite.state_dim > self.state_dim or suite.action_dim > self.action_dim:
                raise ValueError(f"suite {suite.name} has state dim {suite.state_dim} and action dim "
                                 f"{suite.action_dim}, more than the policy's {self.state_dim} and {self.action_dim}")
            unknown = [c for c in suite.cameras if c not in self.image_shapes]
            if unknown:
                raise ValueError(f"suite {suite.name} has cameras {unknown} the policy has no shape for")

    @property
    def cameras(self) -> list[str]:
        return list(self.image_shapes)

    def suite_index(self, name: str) -> int:
        """Position of suite `name` in `suites` (its ``suite.index``).

        Raises:
            ValueError: the policy was trained across other suites, naming them.
        """
        names = [s.name for s in self.suites]
        if name not in names:
            raise ValueError(f"the policy was trained on suites {names} and cannot run {name}: a policy across "
                             "suites only knows the state, action and cameras of the suites it was trained on")
        return names.index(name)

    def shape_of(self, suite: str) -> SuiteShape:
        """The dimensions and cameras the tasks of `suite` use: its own across suites, else the whole spec's (named
        after the suite of the policy's tasks)."""
        if not self.suites:
            trained_on = self.tasks[0].suite if self.tasks else suite
            return SuiteShape(trained_on, self.state_dim, self.action_dim, self.cameras)
        return self.suites[self.suite_index(suite)]

    @classmethod
    def across_suites(cls, specs: list["PolicySpec"]) -> "PolicySpec":
        """One spec for a policy trained on several suites, from each suite's own (one-suite) spec: the task
        tables one after another (renumbered), state and action padded to the largest, the cameras of all.

        Raises:
            ValueError: a spec that is itself across suites, one whose tasks are of several suites, or a camera
                two suites render at different sizes.
        """
        tasks, suites, image_shapes = [], [], {}
        for spec in specs:
            names = {t.suite for t in spec.tasks}
            if spec.suites or len(names) != 1:
                raise ValueError(f"across_suites takes one-suite specs, got one with tasks of {sorted(names)}")
            for camera, shape in spec.image_shapes.items():
                if image_shapes.setdefault(camera, tuple(shape)) != tuple(shape):
                    raise ValueError(f"camera {camera!r} is {image_shapes[camera]} in one suite and {tuple(shape)} "
                                     "in another; render it at one size")
            suites.append(SuiteShape(names.pop(), spec.state_dim, spec.action_dim, spec.cameras))
            tasks += [Task(t.suite, t.name, len(tasks) + i, t.instruction) for i, t in enumerate(spec.tasks)]
        return cls(state_dim=max(s.state_dim for s in specs), action_dim=max(s.action_dim for s in specs),
                   tasks=tasks, image_shapes=image_shapes, suites=suites)

    def to_dict(self) -> dict[str, Any]:
        record = {"state_dim": self.state_dim, "action_dim": self.action_dim,
                  "image_shapes": {c: list(s) for c, s in self.image_shapes.items()},
                  "tasks": [t.to_dict() for t in self.tasks]}
        if self.suites:  # one-suite specs keep the record older checkpoints hold
            record["suites"] = [s.to_dict() for s in self.suites]
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> "PolicySpec":
        return cls(state_dim=int(record["state_dim"]), action_dim=int(record["action_dim"]),
                   tasks=[Task.from_dict(t) for t in record["tasks"]],
                   image_shapes={c: tuple(int(n) for n in s) for c, s in record["image_shapes"].items()},
                   suites=[SuiteShape.from_dict(s) for s in record.get("suites", [])])
