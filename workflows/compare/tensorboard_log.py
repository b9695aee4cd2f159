"""A training run's TensorBoard scalars and training time, read from its event files.

    log = read_tensorboard(Path("outputs/train/mt10_state/tensorboard"))
    log.scalars["train/loss"]       # [(step, value), ...] in step order
    log.wall_time_s                 # seconds of training, summed over sessions (a resumed run has several)

A resumed run starts a new event file whose writer purges the steps from its first step on (`purge_step`):
points from earlier files at those steps are dropped, as TensorBoard itself does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.compat.proto.event_pb2 import SessionLog
from tensorboard.util import tensor_util

log = logging.getLogger(__name__)


@dataclass
class TensorBoardLog:
    scalars: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    sessions: list[tuple[float, float]] = field(default_factory=list)  # (first, last) event time of each file
    problems: list[str] = field(default_factory=list)  # files that could not be read to their end

    @property
    def wall_time_s(self) -> float | None:
        """Seconds from the start of each training session to its last logged point, summed; None without
        events. Includes evaluations during training, not the final evaluation."""
        return sum(end - start for start, end in self.sessions) if self.sessions else None

    def harmonic_mean(self, tag: str) -> float | None:
        """The harmonic mean of a rate logged over equal amounts of work (samples/s over log_every steps):
        total work over total time."""
        values = [v for _, v in self.scalars.get(tag, []) if v > 0]
        return len(values) / sum(1.0 / v for v in values) if values else None

    def last(self, tag: str) -> float | None:
        points = self.scalars.get(tag)
        return points[-1][1] if points else None


def _value(value) -> float | None:
    kind = value.WhichOneof("value")
    if kind == "simple_value":
        return float(value.simple_value)
    if kind == "tensor":
        array = tensor_util.make_ndarray(value.tensor)
        return float(array.reshape(-1)[0]) if array.size == 1 and array.dtype.kind in "fiu" else None
    return None


def _event_files(folder: Path) -> list[Path]:
    files = [p for p in folder.glob("events.out.tfevents.*") if p.is_file()]

    def created(path: Path) -> tuple[float, str]:  # events.out.tfevents.<unix time>.<host>.<pid>.<n>
        parts = path.name.split(".")
        return (float(parts[3]) if len(parts) > 3 and parts[3].isdigit() else 0.0, path.name)

    return sorted(files, key=created)


def read_tensorboard(folder: Path) -> TensorBoardLog:
    """Every scalar of the event files in `folder` (not its subfolders); an absent folder gives an empty log.
    A file cut short by a kill is read up to its last complete event."""
    result = TensorBoardLog()
    points: dict[str, dict[int, float]] = {}
    for path in _event_files(Path(folder)):
        times = []
        try:
            for event in EventFileLoader(str(path)).Load():
                times.append(event.wall_time)
                if event.HasField("session_log") and event.session_log.status == SessionLog.START:
                    for tag_points in points.values():  # a resumed session replaces these steps
                        for step in [s for s in tag_points if s >= event.step]:
                            del tag_points[step]
                for value in event.summary.value:
                    number = _value(value)
                    if number is not None:
                        points.setdefault(value.tag, {})[event.step] = number
        except Exception as error:  # noqa: BLE001  said in the report: a corrupt log must not hide the results
            result.problems.append(f"{path}: stopped reading at a bad record ({type(error).__name__}: {error})")
            log.warning("%s", result.problems[-1])
        if times:
            result.sessions.append((min(times), max(times)))
    result.scalars = {tag: sorted(p.items()) for tag, p in sorted(points.items()) if p}
    return result
