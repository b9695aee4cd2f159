"""LeRobotDataset v3 folders written by the tests themselves, following the documented layout (pyarrow for the
parquet files, PyAV for the mp4s; no lerobot package): meta/info.json, meta/tasks.parquet,
meta/episodes/chunk-000/file-000.parquet, data/chunk-000/file-NNN.parquet, videos/<key>/chunk-000/file-NNN.mp4.
Several episodes share each data and video file, so frames are found by from_timestamp + timestamp."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FPS = 10
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"


@dataclass
class LeRobotEpisode:
    task: int  # task_index
    state: np.ndarray  # (L, Ds)
    action: np.ndarray  # (L, Da)
    frames: dict[str, np.ndarray] = field(default_factory=dict)  # feature -> (L, H, W, 3) uint8, as stored


def marked_frames(length: int, height: int, width: int, episode: int) -> np.ndarray:
    """(L, H, W, 3) upright frames that survive lossy video coding: a grey level per step (40 + 10 t, + 5 per
    episode) with a white block in the top-left corner, so a turned or mirrored frame is told apart."""
    frames = np.empty((length, height, width, 3), np.uint8)
    frames[:] = (40 + 10 * np.arange(length) + 5 * episode)[:, None, None, None]
    frames[:, : height // 3, : width // 3] = 255
    return frames


def grey_level(frame: np.ndarray) -> float:
    """The step's grey level of a `marked_frames` frame (its bottom-right part), whatever coding did to it."""
    height, width = frame.shape[:2]
    return float(frame[height // 2:, width // 2:].mean())


def write_lerobot_folder(root: Path, tasks: list[str], episodes: list[LeRobotEpisode], video_keys: tuple[str, ...] = (),
                         image_keys: tuple[str, ...] = (), episodes_per_file: int = 2,
                         codec: str = "libsvtav1") -> Path:
    """Write a v3 folder; video features as `codec` mp4s (AV1 by default, as LeRobot), image features as PNG."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    first = episodes[0]
    features = {"observation.state": _vector(first.state), "action": _vector(first.action)}
    for key in (*video_keys, *image_keys):
        height, width = first.frames[key].shape[1:3]
        features[key] = {"dtype": "video" if key in video_keys else "image", "shape": [height, width, 3],
                         "names": ["height", "width", "channels"]}
    for key, dtype in (("timestamp", "float32"), ("frame_index", "int64"), ("episode_index", "int64"),
                       ("index", "int64"), ("task_index", "int64")):
        features[key] = {"dtype": dtype, "shape": [1], "names": None}
    info = {"codebase_version": "v3.0", "robot_type": "test", "fps": FPS, "total_episodes": len(episodes),
            "total_frames": sum(len(e.action) for e in episodes), "total_tasks": len(tasks), "chunks_size": 1000,
            "data_path": DATA_PATH, "video_path": VIDEO_PATH if video_keys else None, "features": features}
    _write(root / "meta" / "info.json", json.dumps(info, indent=4).encode())
    tasks_table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": tasks})
    (root / "meta").mkdir(parents=True, exist_ok=True)
    pq.write_table(tasks_table, root / "meta" / "tasks.parquet")

    episode_rows, index = [], 0
    for file_index, start in enumerate(range(0, len(episodes), episodes_per_file)):
        group = list(enumerate(episodes))[start:start + episodes_per_file]
        columns: dict[str, list] = {k: [] for k in ("observation.state", "action", *image_keys, "timestamp",
                                                    "frame_index", "episode_index", "index", "task_index")}
        offset = 0.0  # seconds of video before this episode in the file
        for number, episode in group:
            length = len(episode.action)
            episode_rows.append({"episode_index": number, "tasks": [tasks[episode.task]], "length": length,
                                 "data/chunk_index": 0, "data/file_index": file_index,
                                 "dataset_from_index": index, "dataset_to_index": index + length,
                                 **{f"videos/{key}/{name}": value for key in video_keys for name, value in
                                    (("chunk_index", 0), ("file_index", file_index), ("from_timestamp", offset),
                                     ("to_timestamp", offset + length / FPS))},
                                 "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
            columns["observation.state"] += list(episode.state.astype(np.float32))
            columns["action"] += list(episode.action.astype(np.float32))
            for key in image_keys:
                columns[key] += [{"bytes": _png(frame), "path": None} for frame in episode.frames[key]]
            columns["timestamp"] += list(np.arange(length, dtype=np.float32) / FPS)
            columns["frame_index"] += list(range(length))
            columns["episode_index"] += [number] * length
            columns["index"] += list(range(index, index + length))
            columns["task_index"] += [episode.task] * length
            index, offset = index + length, offset + length / FPS
        table = pa.table({key: _arrow_column(key, values, features) for key, values in columns.items()})
        path = root / DATA_PATH.format(chunk_index=0, file_index=file_index)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        for key in video_keys:
            frames = np.concatenate([episode.frames[key] for _, episode in group])
            write_video(root / VIDEO_PATH.format(video_key=key, chunk_index=0, file_index=file_index), frames, codec)
    episodes_path = root / "meta" / "episodes" / "chunk-000" / "file-000.parquet"
    episodes_path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(episode_rows), episodes_path)
    return root


def write_video(path: Path, frames: np.ndarray, codec: str = "libsvtav1") -> None:
    """(N, H, W, 3) uint8 frames as an mp4 at FPS frames per second, frame i at i / FPS s."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"g": "2", "crf": "20"} if codec == "libsvtav1" else {"g": "2"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode())


def _vector(array: np.ndarray) -> dict:
    return {"dtype": "float32", "shape": [array.shape[1]], "names": [f"x{i}" for i in range(array.shape[1])]}


def _arrow_column(key: str, values: list, features: dict):
    import pyarrow as pa

    feature = features[key]
    if feature["dtype"] == "image":
        return pa.array(values, pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
    if feature["dtype"] == "float32" and feature["shape"] != [1]:
        return pa.array([list(map(float, v)) for v in values], pa.list_(pa.float32(), feature["shape"][0]))
    return pa.array(values, pa.float32() if feature["dtype"] == "float32" else pa.int64())


def _png(frame: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG")
    return buffer.getvalue()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
