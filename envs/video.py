"""Rollout videos as browser-playable mp4 (H.264, yuv420p), written atomically."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import imageio.v2 as imageio
import numpy as np


def _pad_to_even(frames: np.ndarray) -> np.ndarray:
    """yuv420p needs even width and height: pad odd sizes by one edge pixel (never resize)."""
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return frames


def write_mp4(path: Path, frames: Sequence[np.ndarray] | np.ndarray, fps: int = 30) -> Path:
    """Write frames (N, H, W, 3) uint8 to `path`; odd sizes are padded to even by one pixel.

    The file appears under its final name only once complete (temporary name, then rename).
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[0] == 0 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames of shape (N>0, H, W, 3), got {frames.shape}")
    frames = _pad_to_even(frames.astype(np.uint8, copy=False))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.mp4")
    try:
        with imageio.get_writer(tmp, fps=fps, codec="libx264", pixelformat="yuv420p", macro_block_size=1,
                                ffmpeg_log_level="error", output_params=["-movflags", "+faststart"]) as writer:
            for frame in frames:
                writer.append_data(frame)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_mp4(path: Path) -> np.ndarray:
    """All frames of a video, (N, H, W, 3) uint8."""
    with imageio.get_reader(path) as reader:
        return np.stack([np.asarray(frame) for frame in reader])
