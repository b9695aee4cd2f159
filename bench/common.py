"""Small helpers shared by the benchmark scripts: machine facts and writing figures."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from eval_metadata import git_commit, package_versions

RESULTS_DIR = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    return {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
            "mujoco_gl": os.environ.get("MUJOCO_GL"), "packages": package_versions(), "git_commit": git_commit()}


def load(name: str) -> dict[str, Any]:
    """The figures a benchmark saved last ({} if none)."""
    path = RESULTS_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def save(name: str, figures: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **figures}, indent=2) + "\n")
    print(f"wrote {path}")
    return path
