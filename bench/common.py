"""Small helpers shared by the benchmark scripts: reading and writing figures, with their provenance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.atomic import write_text
from common.provenance import provenance

if TYPE_CHECKING:
    from workflows.evaluate import EvalConfig

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


def timed_evaluation(cfg: EvalConfig) -> dict[str, Any]:
    """Run `workflows.evaluate.evaluate(cfg)` in a temporary out_dir (cfg.out_dir is replaced) and time it:
    wall time (set-up included), env steps executed, env steps/s, mean success."""
    import dataclasses
    import tempfile
    import time

    from workflows.evaluate import evaluate

    with tempfile.TemporaryDirectory() as out_dir:
        started = time.perf_counter()
        results = evaluate(dataclasses.replace(cfg, out_dir=out_dir, progress=False))
        wall = time.perf_counter() - started
        lines = (Path(out_dir) / "episodes.jsonl").read_text().splitlines()[1:]  # the first line is the header
    steps = sum(json.loads(line)["length"] for line in lines)
    return {"wall_s": round(wall, 1), "episodes": len(lines), "env_steps": steps,
            "steps_per_s": round(steps / wall, 1), "mean_success": results["suite"]["mean_success"]}
