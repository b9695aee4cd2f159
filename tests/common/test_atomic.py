"""One atomic-write helper for every file the suite writes: whole files or none, and a full disk named."""

from __future__ import annotations

import errno
import subprocess
import sys

import pytest

from common.atomic import DiskFullError, atomic_directory, atomic_path, ensure_folder, recover_directory, write_text


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "results.json"
    write_text(target, "old")
    with pytest.raises(RuntimeError, match="encoder died"):
        with atomic_path(target) as tmp:
            tmp.write_text("half of the new")
            raise RuntimeError("encoder died")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_no_space_left_is_a_disk_full_error_naming_the_file(tmp_path):
    target = tmp_path / "episodes" / "demo.hdf5"
    with pytest.raises(DiskFullError, match=f"disk full: cannot write {target}"):
        with atomic_path(target):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert list(target.parent.iterdir()) == []


def test_temporaries_of_killed_processes_are_removed_and_live_ones_kept(tmp_path):
    target = tmp_path / "task.hdf5"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as live:
        (tmp_path / f".task.{dead}.tmp.hdf5").write_text("left by a kill")
        (tmp_path / f".task.{live.pid}.tmp.hdf5").write_text("still being written")
        write_text(target, "complete")
        assert sorted(p.name for p in tmp_path.iterdir()) == [f".task.{live.pid}.tmp.hdf5", "task.hdf5"]
        live.kill()


def test_a_folder_is_replaced_whole(tmp_path):
    target = tmp_path / "last"
    with atomic_directory(target) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(KeyboardInterrupt):
        with atomic_directory(target) as tmp:
            (tmp / "a").write_text("2")
            raise KeyboardInterrupt
    assert (target / "a").read_text() == "1" and sorted(p.name for p in tmp_path.iterdir()) == ["last"]


@pytest.mark.parametrize("left, expected", [({".last.partial", ".last.old"}, "new"), ({".last.old"}, "old"),
                                            ({".last.partial-incomplete", ".last.old"}, "old")])
def test_a_replacement_cut_between_its_renames_is_recovered(tmp_path, left, expected):
    for name in left:
        folder = tmp_path / name.replace("-incomplete", "")
        folder.mkdir()
        (folder / "a").write_text("new" if "partial" in name else "old")
        if name == ".last.partial":
            (folder / ".complete").touch()
    assert "restored" in recover_directory(tmp_path / "last")
    assert (tmp_path / "last" / "a").read_text() == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]


def test_an_output_folder_that_is_a_file_is_named(tmp_path):
    (tmp_path / "runs").write_text("")
    with pytest.raises(NotADirectoryError, match=f"out_dir=.*runs/x cannot be a folder: {tmp_path / 'runs'} is a file"):
        ensure_folder(tmp_path / "runs" / "x", "out_dir")
