"""mp4 writing: decodes back to the frames written, odd sizes, atomic files."""

from __future__ import annotations

import numpy as np
import pytest

from envs.video import read_mp4, write_mp4


def _gradient_frames(n: int, h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([np.stack([(x * 255 // w + 10 * i) % 256, y * 255 // h, np.full_like(x, 128)], -1)
                     for i in range(n)]).astype(np.uint8)


def test_mp4_decodes_to_frames_of_the_right_size(tmp_path):
    frames = _gradient_frames(12, 64, 80)
    path = write_mp4(tmp_path / "videos" / "clip.mp4", frames, fps=10)
    decoded = read_mp4(path)
    assert decoded.shape == (12, 64, 80, 3)
    assert np.abs(decoded.astype(int) - frames.astype(int)).mean() < 8  # lossy, but the same picture
    assert [p.name for p in path.parent.iterdir()] == ["clip.mp4"]  # no temporary file left


def test_odd_sizes_are_padded_by_one_pixel(tmp_path):
    decoded = read_mp4(write_mp4(tmp_path / "odd.mp4", _gradient_frames(3, 63, 81)))
    assert decoded.shape == (3, 64, 82, 3)


def test_no_frames_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="frames"):
        write_mp4(tmp_path / "empty.mp4", [])
    assert not list(tmp_path.iterdir())
