"""mp4 writing: decodes back to the frames written, odd sizes, atomic files."""

from __future__ import annotations

import subprocess

import imageio_ffmpeg
import numpy as np
import pytest

from envs.video import VideoWriteError, read_mp4, write_mp4


def _gradient_frames(n: int, h: int, w: int) -> np.ndarray:
    """(n, h, w, 3) uint8: horizontal and vertical ramps, shifted a little every frame."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([np.stack([(x * 255 // w + 10 * i) % 256, y * 255 // h, np.full_like(x, 128)], -1)
                     for i in range(n)]).astype(np.uint8)


def _stream_info(path) -> str:
    """ffmpeg's description of the video stream (codec and pixel format)."""
    probe = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                           capture_output=True, text=True)
    return next(line for line in probe.stderr.splitlines() if "Video:" in line)


def test_mp4_decodes_to_the_frames_written(tmp_path):
    frames = _gradient_frames(12, 64, 80)
    path = write_mp4(tmp_path / "videos" / "clip.mp4", frames, fps=10)
    decoded = read_mp4(path)
    assert decoded.shape == (12, 64, 80, 3) and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - frames.astype(int)).mean() < 8  # lossy, but the same picture
    assert [p.name for p in path.parent.iterdir()] == ["clip.mp4"]  # no temporary file left
    info = _stream_info(path)
    assert "h264" in info and "yuv420p" in info, info  # what browsers play


def test_a_list_of_frames_works_too(tmp_path):
    frames = list(_gradient_frames(4, 32, 32))
    assert read_mp4(write_mp4(tmp_path / "list.mp4", frames)).shape == (4, 32, 32, 3)


def test_odd_sizes_are_padded_by_one_edge_pixel(tmp_path):
    frames = _gradient_frames(3, 63, 81)
    decoded = read_mp4(write_mp4(tmp_path / "odd.mp4", frames))
    assert decoded.shape == (3, 64, 82, 3)
    # Padded, not rescaled: the picture keeps its place and the padding repeats the edge.
    assert np.abs(decoded[:, :63, :81].astype(int) - frames.astype(int)).mean() < 8
    assert np.abs(decoded[:, 63].astype(int) - decoded[:, 62].astype(int)).mean() < 8


FAILING_FFMPEG = """#!/bin/sh
# Reads some input, writes a truncated file to its output (the last argument), then fails, as ffmpeg does
# on a full disk or a broken encoder.
head -c 1000 > /dev/null
for out; do :; done
printf 'ftypisom-truncated' > "$out"
echo "Error writing trailer: No space left on device" >&2
exit 1
"""


def test_an_ffmpeg_failure_raises_and_leaves_no_file(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "ffmpeg"
    fake.parent.mkdir()
    fake.write_text(FAILING_FFMPEG)
    fake.chmod(0o755)
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(fake))
    videos = tmp_path / "videos"
    with pytest.raises(VideoWriteError, match="exit status 1.*No space left on device"):
        write_mp4(videos / "clip.mp4", _gradient_frames(40, 64, 64))
    assert not list(videos.iterdir())  # neither the truncated file nor its temporary


@pytest.mark.parametrize("frames", [[], np.zeros((0, 8, 8, 3), np.uint8), np.zeros((2, 8, 8, 3), np.float32)])
def test_no_frames_or_wrong_dtype_is_an_error(tmp_path, frames):
    with pytest.raises(ValueError, match="frames"):
        write_mp4(tmp_path / "bad.mp4", frames)
    assert not list(tmp_path.iterdir())
