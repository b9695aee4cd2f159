"""Per-key statistics of a dataset (min, max, mean, std over every step), cached beside the data.

The cache file is ``<root>/.stats_<fingerprint>.json``; the fingerprint covers the data files'
names, sizes and modification times, the keys chosen for ``obs.state``, what else the source
reads (`EpisodeSource.identity`, e.g. a LeRobot folder's action feature) and the tasks kept
(`dataset.only_tasks`), so a changed file or a different selection gives a new name and a stale
cache is never read.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from common.atomic import write_text
from common.schema import ACTION, OBS_STATE
from datasets.sequence_dataset import MultitaskSequenceDataset

logger = logging.getLogger(__name__)

STATISTICS = ("min", "max", "mean", "std")
FORMAT_VERSION = 1


def compute_statistics(dataset: MultitaskSequenceDataset) -> dict[str, dict[str, np.ndarray]]:
    """``{obs.state | action: {min, max, mean, std}}``, each (D,) float32, over all steps of all episodes."""
    stats = {}
    for key, steps in dataset.step_arrays().items():
        values = steps.astype(np.float64)  # float32 sums over millions of steps drift
        stats[key] = {"min": values.min(axis=0), "max": values.max(axis=0), "mean": values.mean(axis=0),
                      "std": values.std(axis=0)}
        stats[key] = {name: array.astype(np.float32) for name, array in stats[key].items()}
    return stats


def statistics_fingerprint(dataset: MultitaskSequenceDataset) -> str:
    """Hash of the data files (name, size, mtime), the chosen state keys, the source's identity and the tasks
    kept."""
    digest = hashlib.sha256(f"v{FORMAT_VERSION}".encode())
    for path in dataset.files:
        info = path.stat()
        digest.update(f"{path.name}|{info.st_size}|{info.st_mtime_ns}\n".encode())
    digest.update(json.dumps({"state_keys": list(dataset.config.state_keys), "keys": [OBS_STATE, ACTION]}).encode())
    if dataset.source.identity:  # HDF5 has none: its caches keep their names
        digest.update(json.dumps(dataset.source.identity, sort_keys=True).encode())
    if dataset.config.only_tasks is not None:  # statistics of a subset of the tasks the files hold
        digest.update(json.dumps({"only_tasks": sorted(dataset.config.only_tasks)}).encode())
    return digest.hexdigest()[:16]


def statistics_cache_path(dataset: MultitaskSequenceDataset) -> Path:
    return dataset.root / f".stats_{statistics_fingerprint(dataset)}.json"


def load_or_compute_statistics(dataset: MultitaskSequenceDataset) -> dict[str, dict[str, np.ndarray]]:
    """Statistics from the cache file when it matches the data, else computed and cached."""
    path = statistics_cache_path(dataset)
    cached = _read_cache(path)
    if cached is not None:
        logger.info("statistics read from %s", path)
        return cached
    stats = compute_statistics(dataset)
    _write_cache(path, stats)
    return stats


def _read_cache(path: Path) -> dict[str, dict[str, np.ndarray]] | None:
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
        return {key: {name: np.asarray(record["stats"][key][name], dtype=np.float32) for name in STATISTICS}
                for key in (OBS_STATE, ACTION)}
    except (OSError, ValueError, KeyError, TypeError) as error:
        logger.warning("ignoring unreadable statistics cache %s (%s); computing again", path, error)
        return None


def _write_cache(path: Path, stats: dict[str, dict[str, np.ndarray]]) -> None:
    """Write atomically; a read-only data folder only costs a recomputation next time."""
    record = {"format_version": FORMAT_VERSION,
              "stats": {key: {name: array.tolist() for name, array in values.items()} for key, values in stats.items()}}
    try:
        write_text(path, json.dumps(record, indent=1) + "\n")
        logger.info("statistics cached in %s", path)
    except OSError as error:
        logger.warning("could not cache statistics in %s (%s)", path, error)
