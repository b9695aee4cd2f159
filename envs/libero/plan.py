"""From a task's BDDL goal to the ordered sub-goals a scripted expert works through.

A LIBERO goal is a conjunction of predicates: ``in``/``on`` (object, destination), ``open``/``close``
(a drawer region or a door fixture), ``turnon``/``turnoff`` (a stove). `plan_task` turns it into a
`TaskPlan`: the goal predicates as `SubGoal` steps, each with the primitive that achieves it, in an
order that can be carried out (a container is closed only after what goes inside it is in), plus the
preconditions they need (a closed drawer or microwave is opened before anything is put inside).

The expert keeps no state: at every step it works on `TaskPlan.current_step` of the predicate flags
that the env computes with LIBERO's own checks (``obs.privileged``), i.e. the first goal step not yet
satisfied (or satisfied with its object still in the hand), or that step's first unsatisfied
precondition. What the env must observe for the primitives
(poses of `TaskPlan.entities`, joints and handles of `TaskPlan.mechanisms`) is named here too, so that
env and expert agree on one layout (`envs.libero.privileged`) without the expert building a scene.

A goal with a predicate no primitive achieves raises `UnplannableGoalError`, naming the task.
Pure Python over the parsed BDDL problem: nothing here imports robosuite.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from envs.libero.privileged import MAX_ENTITIES

# Fixture categories with a mechanism, and which kind of primitive moves it.
DRAWER_CABINETS = ("wooden_cabinet", "white_cabinet", "yellow_cabinet")  # drawers: <cabinet>_<level>_region
DRAWER_LEVELS = ("top_region", "middle_region", "bottom_region")
DOOR_FIXTURES = ("microwave",)  # one hinged door: the fixture itself opens and closes
KNOB_FIXTURES = ("flat_stove",)  # a knob turned about the vertical: turnon / turnoff
PUSHED_KINDS = ("plate",)  # too flat and wide to grasp from above: pushed over the table to its region

PICK_PLACE, PUSH, OPEN, CLOSE, TURN_ON, TURN_OFF = "pick_place", "push", "open", "close", "turn_on", "turn_off"
PRIMITIVES = (PICK_PLACE, PUSH, OPEN, CLOSE, TURN_ON, TURN_OFF)
_UNARY_PRIMITIVES = {"open": OPEN, "close": CLOSE, "turnon": TURN_ON, "turnoff": TURN_OFF}


class UnplannableGoalError(ValueError):
    """A BDDL goal the scripted expert has no primitive for."""


@dataclass(frozen=True)
class SubGoal:
    """One predicate to make true, and the primitive that does it.

    predicate: BDDL predicate, lower case ("in", "on", "open", "close", "turnon", "turnoff").
    args: its arguments, e.g. ("akita_black_bowl_1", "wooden_cabinet_1_top_region").
    primitive: one of `PRIMITIVES`.
    kind: object category of the moved object (pick_place/push: grasp and push settings), else "".
    """

    predicate: str
    args: tuple[str, ...]
    primitive: str
    kind: str = ""

    @property
    def bddl(self) -> list[str]:
        """The predicate as LIBERO's ``_eval_predicate`` takes it: [name, *args]."""
        return [self.predicate, *self.args]


@dataclass(frozen=True)
class TaskPlan:
    """What the expert does for one task; see the module docstring.

    steps: every predicate whose truth the env reports (obs.privileged's flags), goal steps and
        preconditions alike, in this order.
    goal_steps: indices into `steps` of the goal predicates, in the order they are worked on.
    preconditions: {goal step index: indices of the steps that must hold before it is worked on}.
    entities: names whose poses the env reports (objects, destinations, mechanisms, containers), in order.
    mechanisms: names of the drawers, doors and knobs the env reports joints and handles of.
    containers: {destination region: the object or fixture it belongs to} (a caddy's slot: the caddy),
        whose box a carried object must clear; tables are left out.
    slots: {step index: (slot, slots)} for objects put On the same destination ("put both moka pots on
        the stove"): each goes to its own place on it, not on top of the one before.
    bystanders: {step index: the scene's other movable objects} for a push, which must clear them out of
        the pushed object's way (they are in `entities` too, after everything the steps name).
    """

    task_name: str
    steps: tuple[SubGoal, ...]
    goal_steps: tuple[int, ...]
    preconditions: dict[int, tuple[int, ...]] = field(default_factory=dict)
    entities: tuple[str, ...] = ()
    mechanisms: tuple[str, ...] = ()
    containers: dict[str, str] = field(default_factory=dict)
    slots: dict[int, tuple[int, int]] = field(default_factory=dict)
    bystanders: dict[int, tuple[str, ...]] = field(default_factory=dict)

    def current_step(self, satisfied: Sequence[bool], committed: Callable[[int], bool] = lambda step: False,
                     in_hand: Callable[[int], bool] = lambda step: False) -> int | None:
        """Index of the step to work on given each step's truth now; None when every goal step holds.
        A goal step for which `committed(step)` holds (e.g. its object is in the hand) is worked on
        even if a precondition lapsed meanwhile (a drawer nudged a little shut while a bowl goes in).
        A goal step that holds while `in_hand(step)` (its object is still held) is finished first: the
        object is put down and let go before the next step moves the hand (a mug counts as in the
        microwave as soon as it passes the opening's face, long before it is put down)."""
        for goal in self.goal_steps:
            if satisfied[goal]:
                if in_hand(goal):
                    return goal
                continue
            if not committed(goal):
                for pre in self.preconditions.get(goal, ()):
                    if not satisfied[pre]:
                        return pre
            return goal
        return None

    def entity(self, name: str) -> int:
        return self.entities.index(name)

    def mechanism(self, name: str) -> int:
        return self.mechanisms.index(name)


@dataclass(frozen=True)
class SceneNames:
    """Categories of a parsed BDDL problem's objects and fixtures, and the parent of each region."""

    object_kinds: dict[str, str]
    fixture_kinds: dict[str, str]
    region_parents: dict[str, str]

    @classmethod
    def from_problem(cls, problem: dict[str, Any]) -> "SceneNames":
        """From ``bddl_utils.robosuite_parse_problem``'s dict."""
        objects = {name: kind for kind, names in problem["objects"].items() for name in names}
        fixtures = {name: kind for kind, names in problem["fixtures"].items() for name in names}
        parents = {name: region["target"] for name, region in problem["regions"].items()}
        return cls(objects, fixtures, parents)

    def mechanism_of(self, name: str) -> str | None:
        """The entity whose joint opens `name` (a drawer region, or a door fixture or one of its
        regions), or None when `name` has no mechanism (a basket, a table region, a shelf)."""
        parent = self.region_parents.get(name)
        if parent is not None:
            kind = self.fixture_kinds.get(parent, "")
            if kind in DRAWER_CABINETS and name.endswith(DRAWER_LEVELS):
                return name
            return parent if kind in DOOR_FIXTURES else None
        return name if self.fixture_kinds.get(name, "") in DOOR_FIXTURES else None

    def container_of(self, region: str) -> str | None:
        """The object or fixture (not a table) region `region` belongs to, or None."""
        parent = self.region_parents.get(region)
        if parent in self.object_kinds or (parent in self.fixture_kinds and "table" not in self.fixture_kinds[parent]):
            return parent
        return None


def plan_task(goal_state: list[list[str]], scene: SceneNames, task_name: str) -> TaskPlan:
    """The TaskPlan of a BDDL goal (``parsed_problem["goal_state"]``); UnplannableGoalError if a
    predicate has no primitive."""
    goals = [_goal_step(predicate, scene, task_name) for predicate in goal_state]
    goals = _closing_last(_supports_first(goals), scene)
    steps: list[SubGoal] = list(goals)
    preconditions: dict[int, tuple[int, ...]] = {}
    for index, goal in enumerate(goals):
        if goal.predicate != "in":
            continue
        mechanism = scene.mechanism_of(goal.args[1])
        if mechanism is not None:
            opened = SubGoal("open", (mechanism,), OPEN)
            if opened not in steps:
                steps.append(opened)
            preconditions[index] = (steps.index(opened),)
    entities: list[str] = []
    mechanisms: list[str] = []
    for step in steps:
        for name in step.args:
            if name not in entities:
                entities.append(name)
        if step.primitive in (OPEN, CLOSE, TURN_ON, TURN_OFF) and step.args[0] not in mechanisms:
            mechanisms.append(step.args[0])
    containers = {step.args[1]: scene.container_of(step.args[1]) for step in steps
                  if step.primitive == PICK_PLACE and scene.container_of(step.args[1]) is not None}
    entities += [name for name in containers.values() if name not in entities]
    sharing = {}
    for index, step in enumerate(steps):
        if step.primitive == PICK_PLACE and step.predicate == "on":  # dropped into a basket, they find room
            sharing.setdefault(step.args[1], []).append(index)
    slots = {index: (slot, len(indices)) for indices in sharing.values() if len(indices) > 1
             for slot, index in enumerate(indices)}
    others = [name for name in scene.object_kinds if name not in entities][:MAX_ENTITIES - len(entities)]
    bystanders = {index: tuple(others) for index, step in enumerate(steps) if step.primitive == PUSH}
    if bystanders:
        entities += others
    return TaskPlan(task_name, tuple(steps), tuple(range(len(goals))), preconditions, tuple(entities),
                    tuple(mechanisms), containers, slots, bystanders)


def _goal_step(predicate: list[str], scene: SceneNames, task_name: str) -> SubGoal:
    name, *args = [predicate[0].lower(), *predicate[1:]]
    if name in ("in", "on") and len(args) == 2:
        kind = scene.object_kinds.get(args[0])
        if kind is None:
            raise UnplannableGoalError(f"{task_name}: {predicate} moves {args[0]!r}, which is not a movable object")
        primitive = PUSH if kind in PUSHED_KINDS and args[1] in scene.region_parents else PICK_PLACE
        return SubGoal(name, tuple(args), primitive, kind)
    if name in ("open", "close") and len(args) == 1 and scene.mechanism_of(args[0]) == args[0]:
        return SubGoal(name, tuple(args), _UNARY_PRIMITIVES[name])
    if name in ("turnon", "turnoff") and len(args) == 1 and scene.fixture_kinds.get(args[0]) in KNOB_FIXTURES:
        return SubGoal(name, tuple(args), _UNARY_PRIMITIVES[name])
    raise UnplannableGoalError(f"{task_name}: no primitive achieves {predicate} (known: in/on an object, "
                               f"open/close a drawer or {'/'.join(DOOR_FIXTURES)}, turnon/turnoff "
                               f"{'/'.join(KNOB_FIXTURES)})")


def _supports_first(goals: list[SubGoal]) -> list[SubGoal]:
    """Goal steps in BDDL order, except that an object that others go on or in is moved first ("stack the
    left bowl on the right bowl and place them in the tray": the right bowl goes into the tray, then the
    left one onto it; the other way round, the stacked bowl is in the way of the fingers taking the
    bottom one)."""
    ordered = list(goals)
    for goal in goals:
        support = [g for g in ordered if g.primitive == PICK_PLACE and g.args[0] == goal.args[-1]]
        if goal.primitive == PICK_PLACE and support and ordered.index(support[0]) > ordered.index(goal):
            ordered.remove(support[0])
            ordered.insert(ordered.index(goal), support[0])
    return ordered


def _closing_last(goals: list[SubGoal], scene: SceneNames) -> list[SubGoal]:
    """Goal steps in BDDL order, except that closing a container waits for what goes inside it
    ("put the bowl in the drawer and close it" lists the close first)."""
    def fills(goal: SubGoal, container: str) -> bool:
        return goal.predicate == "in" and scene.mechanism_of(goal.args[1]) == container

    closing = [g for g in goals if g.predicate == "close" and any(fills(other, g.args[0]) for other in goals)]
    return [g for g in goals if g not in closing] + closing


def plan_problem(problem: dict[str, Any], task_name: str) -> TaskPlan:
    """`plan_task` of a parsed BDDL problem (``bddl_utils.robosuite_parse_problem``)."""
    return plan_task(problem["goal_state"], SceneNames.from_problem(problem), task_name)


def mechanism_fixture(problem: dict[str, Any], mechanism: str) -> str:
    """The fixture a plan mechanism belongs to: a drawer region's cabinet, or the fixture itself."""
    return SceneNames.from_problem(problem).region_parents.get(mechanism, mechanism)
