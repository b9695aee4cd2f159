"""Rollout videos as browser-playable mp4 (H.264, yuv420p), written atomically."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import imageio.v2 as imageio
import imageio_ffmpeg
import numpy as np

from common.atomic import atomic_path


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


class VideoWriteError(RuntimeError):
    """ffmpeg could not encode a video (it exited with an error); no file is left under the video's name."""


def ffmpeg_command(path: Path, height: int, width: int, fps: int) -> list[str]:
    """Raw RGB frames on stdin -> H.264 / yuv420p mp4 at `path`, index first for browsers (+faststart)."""
    return [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
            "-s", f"{width}x{height}", "-r", str(fps), "-i", "-", "-an", "-vcodec", "libx264",
            "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(path)]


def write_mp4(path: Path, frames: Sequence[np.ndarray] | np.ndarray, fps: int = 30) -> Path:
    """Encode frames (N, H, W, 3) uint8 as H.264 / yuv420p mp4 at `path`; returns `path`.

    An odd H or W is padded to even by one repeated edge pixel, so the video is
    (H + H % 2, W + W % 2). Parent folders are created. ffmpeg encodes under a temporary
    name (`common.atomic.atomic_path`) that is renamed only when ffmpeg reports success: its
    exit status is checked (imageio's writer ignores it and would keep a truncated file).

    Raises:
        ValueError: no frames, or not (N, H, W, 3) uint8.
        VideoWriteError: ffmpeg failed; the message holds what it printed.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[0] == 0 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected frames (N>0, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    frames = _pad_to_even(frames)
    path = Path(path)
    with atomic_path(path) as tmp, tempfile.TemporaryFile() as messages:
        command = ffmpeg_command(tmp, frames.shape[1], frames.shape[2], fps)
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=messages)
        try:
            for frame in frames:
                process.stdin.write(np.ascontiguousarray(frame).data)
            process.stdin.close()
        except BrokenPipeError:
            pass  # ffmpeg stopped reading: its exit status and messages say why
        finally:
            if process.wait() != 0:
                messages.seek(0)
                said = messages.read().decode(errors="replace").strip()[-2000:]
                raise VideoWriteError(f"ffmpeg could not write {path} (exit status {process.returncode}): {said}")
    return path


def read_mp4(path: Path) -> np.ndarray:
    """All frames of a video file, (N, H, W, 3) uint8."""
    with imageio.get_reader(path, format="FFMPEG") as reader:
        return np.stack([np.asarray(frame) for frame in reader])
