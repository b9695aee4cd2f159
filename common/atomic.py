"""One way to write files and folders: under a temporary name beside the target, synced to disk, then
renamed into place; the temporary is removed on failure. A reader never sees half a file, a kill never
leaves one under the final name, and a full disk is said as such (`DiskFullError`), naming the path.

    with atomic_path("out/results.json") as tmp:      # any writer that takes a path (h5py, ffmpeg, numpy)
        tmp.write_text(text)
    write_text("out/results.md", text)               # the same, for text and bytes
    with atomic_directory("ckpt/last") as tmp:       # a folder of files replaced as a whole
        (tmp / "model.safetensors").write_bytes(data)
    recover_directory("ckpt/last")                   # after a kill in the middle of the replacement
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

COMPLETE_MARKER = ".complete"  # written last into a temporary folder: it holds everything


class DiskFullError(OSError):
    """No space left on the device (or the quota is used up) while writing a file."""


def is_disk_full(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)


def disk_full_error(path: str | Path, error: OSError) -> DiskFullError:
    return DiskFullError(error.errno, f"disk full: cannot write {path} ({os.strerror(error.errno)}); free some "
                                      "space and run the same command again")


def _fsync(path: Path) -> None:
    """Flush a file's data, or a folder's entries, to the disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def remove_stale_temporaries(path: Path) -> None:
    """Remove temporaries of `path` that killed processes left behind (their process id no longer runs)."""
    for tmp in path.parent.glob(f".{path.stem}.*.tmp{path.suffix}"):
        pid = tmp.name[len(path.stem) + 2:-len(f".tmp{path.suffix}")]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid)):
            log.info("removing %s, left by a process that was killed while writing it", tmp)
            _remove(tmp)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` (same suffix, so writers that choose a format by it work); when
    the block ends, the file is synced and renamed to `path`. On any error it is removed instead; what a
    killed process left behind is removed the next time the same file is written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(path.parent)
    except BaseException as error:
        _remove(tmp)
        if is_disk_full(error):
            raise disk_full_error(path, error) from error
        raise


def write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def _siblings(path: Path) -> tuple[Path, Path]:
    """The temporary folder a replacement is written to, and the name the folder it replaces takes meanwhile."""
    return path.with_name(f".{path.name}.partial"), path.with_name(f".{path.name}.old")


@contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder; when the block ends, its files are synced and it replaces `path`.

    The replacement takes two renames (old folder aside, new one in place); `recover_directory` repairs a
    kill between them. On any error the temporary folder is removed and `path` is left as it was.
    """
    path = Path(path)
    partial, old = _siblings(path)
    _remove(partial)
    partial.mkdir(parents=True)
    try:
        yield partial
        for item in partial.iterdir():
            _fsync(item)
        (partial / COMPLETE_MARKER).touch()
        _fsync(partial)
    except BaseException as error:
        _remove(partial)
        if is_disk_full(error):
            raise disk_full_error(path, error) from error
        raise
    _remove(old)
    if path.exists():
        os.replace(path, old)
    os.replace(partial, path)
    _fsync(path.parent)
    _remove(old)


def recover_directory(path: str | Path) -> str | None:
    """Repair a replacement of `path` that a kill interrupted; returns what was done, or None.

    `path` missing: a complete temporary folder (the newer content) is moved into place, else the folder it
    was replacing. Leftover temporary folders beside an intact `path` are removed.
    """
    path = Path(path)
    partial, old = _siblings(path)
    done = None
    if not path.exists():
        if (partial / COMPLETE_MARKER).exists():
            os.replace(partial, path)
            done = f"{path} restored from the complete replacement {partial.name} (a kill stopped its last rename)"
        elif old.exists():
            os.replace(old, path)
            done = f"{path} restored from the previous version {old.name} (a kill stopped its replacement)"
    for leftover in (partial, old):
        if leftover.exists():
            _remove(leftover)
    return done


def ensure_folder(path: str | Path, option: str) -> Path:
    """Create the output folder `path` (named by config option `option`) or say plainly why it cannot be."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), path)
        raise NotADirectoryError(f"{option}={path} cannot be a folder: {blocker} is a file; give a folder to write "
                                 "into") from None
    return path
