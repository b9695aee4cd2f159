"""The files of a LeRobotDataset v3 folder, read with pyarrow and PyAV: meta/info.json, meta/tasks.parquet,
meta/episodes/, data parquet columns and mp4 containers. Every problem is a `DatasetError` naming the file
and the key; `datasets.lerobot` builds the episodes from them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from datasets.reader import DatasetError


def open_video(path: Path) -> Any:
    """A PyAV container whose decoder runs in the calling thread. A decoder with threads of its own (dav1d's
    default) cannot be freed in a process forked from the one that opened it (a DataLoader worker
    collecting the parent's garbage): it waits forever for threads the fork did not copy. One thread per
    DataLoader worker is also what the cores can give."""
    import av

    container = av.open(str(path))
    container.streams.video[0].codec_context.thread_count = 1
    return container


def read_info(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DatasetError(f"{path}: meta file is missing; a LeRobotDataset v3 folder has meta/info.json")
    try:
        info = json.loads(path.read_text())
    except ValueError as error:
        raise DatasetError(f"{path}: not valid JSON ({error})") from error
    version = str(info.get("codebase_version", ""))
    if not version.startswith("v3"):
        raise DatasetError(f"{path}: key 'codebase_version' is {version!r}; only LeRobotDataset v3 folders are read "
                           "(convert v2.1 with lerobot's convert_dataset_v21_to_v30)")
    for key in ("features", "fps", "data_path"):
        if key not in info:
            raise DatasetError(f"{path}: key '{key}' is missing")
    if any(f.get("dtype") == "video" for f in info["features"].values()) and "video_path" not in info:
        raise DatasetError(f"{path}: key 'video_path' is missing, but features are videos")
    return info


def read_table(path: Path) -> Any:
    import pyarrow.parquet as pq

    if not path.is_file():
        raise DatasetError(f"{path}: meta file is missing")
    try:
        return pq.read_table(path)
    except Exception as error:  # pyarrow's errors for corrupt files vary
        raise DatasetError(f"{path}: cannot read parquet file ({error})") from error


def read_tasks(path: Path) -> dict[int, str]:
    """task_index -> text. The text is the pandas index LeRobot writes (column "task", or "__index_level_0__")."""
    table = read_table(path)
    text = next((c for c in ("task", "__index_level_0__") if c in table.column_names), None)
    if "task_index" not in table.column_names or text is None:
        raise DatasetError(f"{path}: key 'task_index' or 'task' is missing (columns: {table.column_names})")
    return {int(i): str(t) for i, t in zip(table.column("task_index").to_pylist(), table.column(text).to_pylist())}


def read_episodes(folder: Path) -> list[dict[str, Any]]:
    files = sorted(folder.glob("*/*.parquet"))
    if not files:
        raise DatasetError(f"{folder}: meta files are missing (meta/episodes/chunk-*/file-*.parquet)")
    rows = []
    for path in files:
        table = read_table(path)
        for column in ("episode_index", "length", "data/chunk_index", "data/file_index"):
            if column not in table.column_names:
                raise DatasetError(f"{path}: column '{column}' is missing")
        names = [c for c in table.column_names if not c.startswith("stats/")]
        rows += table.select(names).to_pylist()
    return sorted(rows, key=lambda row: row["episode_index"])


def read_data_file(path: Path, columns: list[str], raw: bool = False) -> dict[str, Any]:
    """Columns of a data file: (N,) for scalars, (N, D) for vectors; `raw` keeps Python objects (images)."""
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
        missing = [c for c in columns if c not in schema.names]
        if missing:
            raise DatasetError(f"{path}: key '{missing[0]}' is missing (columns: {schema.names})")
        table = pq.read_table(path, columns=columns, memory_map=True)
    except DatasetError:
        raise
    except Exception as error:
        raise DatasetError(f"{path}: cannot read parquet file ({error})") from error
    if raw:
        return {c: table.column(c).to_pylist() for c in columns}
    return {c: _to_numpy(path, c, table.column(c)) for c in columns}


def _to_numpy(path: Path, key: str, column: Any) -> np.ndarray:
    import pyarrow as pa

    column = column.combine_chunks()
    if pa.types.is_list(column.type) or pa.types.is_fixed_size_list(column.type) or pa.types.is_large_list(column.type):
        lengths = np.asarray(column.value_lengths()) if not pa.types.is_fixed_size_list(column.type) else None
        values = np.asarray(column.flatten())
        if lengths is not None and len(lengths) and (lengths != lengths[0]).any():
            raise DatasetError(f"{path}: key '{key}' has rows of different lengths {sorted(set(lengths.tolist()))}")
        return values.reshape(len(column), -1)
    return np.asarray(column)
