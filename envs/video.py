"""Rollout videos as browser-playable mp4 (H.264, yuv420p), written atomically."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import imageio.v2 as imageio
import numpy as np


def _pad_to_even(frames: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) -> (N, H + H % 2, W + W % 2, 3), repeating the last row / column.

    yuv420p stores colour at half resolution, so H.264 encoders need an even width and
    height. Padding by one edge pixel keeps every pixel where it was; imageio's own fix
    (macro_block_size) would rescale the picture instead, so it is switched off.
    """
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return frames


def write_mp4(path: Path, frames: Sequence[np.ndarray] | np.ndarray, fps: int = 30) -> Path:
    """Encode frames (N, H, W, 3) uint8 as H.264 / yuv420p mp4 at `path`; returns `path`.

    An odd H or W is padded to even by one repeated edge pixel, so the video is
    (H + H % 2, W + W % 2). Parent folders are created. The file is encoded under a
    temporary name in the same folder and renamed at the end, so a killed run never
    leaves a half-written file under the final name. `+faststart` puts the index first,
    so browsers start playing before the whole file has arrived.

    Raises:
        ValueError: no frames, or not (N, H, W, 3) uint8.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[0] == 0 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected frames (N>0, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    frames = _pad_to_even(frames)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.mp4")  # ffmpeg picks the muxer by suffix
    try:
        writer = imageio.get_writer(tmp, format="FFMPEG", fps=fps, codec="libx264", pixelformat="yuv420p",
                                    macro_block_size=1, ffmpeg_log_level="error",
                                    output_params=["-movflags", "+faststart"])
        try:
            for frame in frames:
                writer.append_data(frame)
        finally:
            # Not `with`: imageio's writer skips close() on error, and the ffmpeg process would
            # then write the temporary file after it was removed below.
            writer.close()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_mp4(path: Path) -> np.ndarray:
    """All frames of a video file, (N, H, W, 3) uint8."""
    with imageio.get_reader(path, format="FFMPEG") as reader:
        return np.stack([np.asarray(frame) for frame in reader])
