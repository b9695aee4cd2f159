"""Small helpers shared by the benchmark scripts: reading and writing figures, with their provenance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from common.atomic import write_text
from common.provenance import provenance

RESULTS_DIR = Path(__file__).parent / "results"


def load(name: str) -> dict[str, Any]:
    """The figures a benchmark saved last ({} if none)."""
    path = RESULTS_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def save(name: str, figures: dict[str, Any]) -> Path:
    text = json.dumps({"provenance": provenance(), **figures}, indent=2) + "\n"
    path = write_text(RESULTS_DIR / f"{name}.json", text)
    print(f"wrote {path}")
    return path
