"""The runs a comparison reads: where they are, which method and seed each is, and what they hold.

A run folder is either a training run (`config.yaml`, `final_eval/results.json`, `tensorboard/`) or an
evaluation (`results.json` and `episodes.jsonl` beside its `config.yaml`). A folder that is neither is searched
for training runs below it (a hydra multirun sweep, a folder of runs).

    runs = load_runs(find_run_folders(["outputs/train/mt10_*"]), LabelOptions())
"""

from __future__ import annotations

import fnmatch
import glob
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from envs.results import JOURNAL_NAME, EpisodeRecord
from workflows.compare.tensorboard_log import TensorBoardLog, read_tensorboard

log = logging.getLogger(__name__)

DEFAULT_METHOD_KEYS = ("trainer.multitask.method",)
DEFAULT_SEED_KEY = "trainer.seed"
_MISSING = object()


@dataclass
class LabelOptions:
    """How a run's method and seed are read (the CLI's --label, --method-key and --seed-key)."""

    labels: list[tuple[str, str]] = field(default_factory=list)  # (glob pattern on the run's path, method)
    method_keys: tuple[str, ...] = DEFAULT_METHOD_KEYS  # config.yaml keys whose values, joined by "/", name it
    seed_key: str = DEFAULT_SEED_KEY  # config.yaml key of the training seed

    @staticmethod
    def parse_label(text: str) -> tuple[str, str]:
        pattern, sep, name = text.rpartition("=")
        if not sep or not pattern or not name:
            raise ValueError(f"--label wants PATTERN=METHOD (e.g. 'outputs/train/*pcgrad*=pcgrad'), got {text!r}")
        return pattern, name


@dataclass
class Run:
    """One run: its identity (method, seed) and what its final evaluation and training logs hold."""

    path: Path  # the run folder
    results_dir: Path  # results.json, episodes.jsonl and videos/
    method: str
    seed: int
    results: dict[str, Any]  # results.json
    outcomes: dict[tuple[str, int], bool]  # (task, episode) -> success, for episodes that did not error
    videos: dict[str, tuple[Path, bool]]  # task -> (the first recorded video, its episode's success)
    tensorboard: TensorBoardLog

    @property
    def tasks(self) -> list[str]:
        return list(self.results["tasks"])

    @property
    def metadata(self) -> dict[str, Any]:
        return self.results.get("metadata", {})


def _run_kind(path: Path) -> tuple[Path, Path] | None:
    """(run folder, results folder) when `path` is a run, else None."""
    if (path / "final_eval" / "results.json").is_file():
        return path, path / "final_eval"
    if path.name == "final_eval" and (path / "results.json").is_file() and (path.parent / "config.yaml").is_file():
        return path.parent, path
    if (path / "results.json").is_file():
        return path, path
    return None


def find_run_folders(arguments: list[str]) -> list[tuple[Path, Path]]:
    """(run folder, results folder) for each argument: a run, a glob of runs (expanded here when the shell
    did not), or a folder searched for training runs. Duplicates are dropped, order kept.

    Raises:
        FileNotFoundError: an argument matches nothing, or a folder holds no run.
    """
    found: dict[Path, tuple[Path, Path]] = {}
    for argument in arguments:
        paths = [Path(p) for p in sorted(glob.glob(argument))] if glob.has_magic(argument) else [Path(argument)]
        if not paths or not all(p.exists() for p in paths):
            raise FileNotFoundError(f"no run folder at {argument}")
        for path in paths:
            kinds = [_run_kind(path)] if _run_kind(path) else [
                _run_kind(results.parent.parent) for results in sorted(path.rglob("final_eval/results.json"))]
            kinds = [k for k in kinds if k is not None]
            if not kinds and not glob.has_magic(argument):
                raise FileNotFoundError(f"{path} is not a run (no final_eval/results.json or results.json) and "
                                        "holds none below it")
            for run, results in kinds:
                found.setdefault(run.resolve(), (run, results))
    if not found:
        raise FileNotFoundError(f"no runs found in {arguments}")
    return list(found.values())


def config_value(config: dict[str, Any], dotted: str) -> Any:
    """The value at a dotted key, or the module's _MISSING marker."""
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _read_config(run: Path, results_dir: Path) -> dict[str, Any]:
    for path in (run / "config.yaml", results_dir / "config.yaml"):
        if path.is_file():
            return OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    return {}


def run_method(run: Path, config: dict[str, Any], options: LabelOptions) -> str:
    """The method of a run: the first --label pattern its path matches, else its config's method keys."""
    for pattern, name in options.labels:
        if any(fnmatch.fnmatch(str(p), pattern) for p in (run, run.resolve())):
            return name
    values = [config_value(config, key) for key in options.method_keys]
    if all(v is _MISSING for v in values):
        raise ValueError(f"{run}: its config.yaml has no {' or '.join(options.method_keys)}; name its method with "
                         "--label 'PATTERN=METHOD' (a glob on the run's path) or read it from other keys with "
                         "--method-key (e.g. --method-key policy.name)")
    return "/".join(str(v) for v in values if v is not _MISSING)


def read_outcomes(results_dir: Path, tasks: list[str], episodes_per_task: int | None
                  ) -> tuple[dict[tuple[str, int], bool], list[EpisodeRecord]]:
    """Successes of the journal's latest record per (task, episode), errors left out, as results.json counts
    them (only episodes below episodes_per_task); also the records themselves."""
    lines = (results_dir / JOURNAL_NAME).read_text(encoding="utf-8").splitlines()[1:]
    latest: dict[tuple[str, int], EpisodeRecord] = {}
    for number, line in enumerate(lines, start=2):
        if not line.strip():
            continue
        try:
            record = EpisodeRecord.from_dict(json.loads(line))
        except (ValueError, KeyError, TypeError):
            if number == len(lines) + 1:  # the last line of a run killed mid-write
                continue
            raise ValueError(f"{results_dir / JOURNAL_NAME}: line {number} is corrupt") from None
        if record.task in tasks and (episodes_per_task is None or record.episode < episodes_per_task):
            latest[record.key] = record
    outcomes = {key: r.success for key, r in latest.items() if r.status != "error"}
    return outcomes, list(latest.values())


def _first_videos(results_dir: Path, records: list[EpisodeRecord]) -> dict[str, tuple[Path, bool]]:
    videos: dict[str, tuple[Path, bool]] = {}
    for record in sorted(records, key=lambda r: r.episode):
        if record.video and record.task not in videos and (results_dir / record.video).is_file():
            videos[record.task] = (results_dir / record.video, record.success)
    return videos


def load_run(run: Path, results_dir: Path, options: LabelOptions) -> Run:
    """Read one run. Raises ValueError when its method or seed cannot be told."""
    config = _read_config(run, results_dir)
    results = json.loads((results_dir / "results.json").read_text(encoding="utf-8"))
    seed = config_value(config, options.seed_key)
    if seed is _MISSING:
        log.warning("%s: no %s in its config.yaml; taking seed 0", run, options.seed_key)
        seed = 0
    tasks = list(results["tasks"])
    episodes = results.get("metadata", {}).get("protocol", {}).get("episodes_per_task")
    outcomes, records = read_outcomes(results_dir, tasks, episodes)
    return Run(path=run, results_dir=results_dir, method=run_method(run, config, options), seed=int(seed),
               results=results, outcomes=outcomes, videos=_first_videos(results_dir, records),
               tensorboard=read_tensorboard(run / "tensorboard"))


def load_runs(folders: list[tuple[Path, Path]], options: LabelOptions) -> list[Run]:
    """Read every run; refuses two runs of one method with the same seed (their episodes would collide)."""
    runs = [load_run(run, results, options) for run, results in folders]
    seen: dict[tuple[str, int], Path] = {}
    for run in runs:
        other = seen.setdefault((run.method, run.seed), run.path)
        if other != run.path:
            raise ValueError(f"two runs of method {run.method!r} with seed {run.seed}: {other} and {run.path}; "
                             f"give them different methods (--label, --method-key) or leave one out")
    return runs
