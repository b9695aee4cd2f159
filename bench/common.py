"""Small helpers shared by the benchmark scripts: reading and writing figures, with their provenance."""

from __future__ import annotations

import json
import time
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


class TimedPolicy:
    """A ChunkPolicy that times its policy's `predict_action_chunk` calls (calls, rows, seconds)."""

    def __init__(self, policy: Any):
        self.policy, self.calls, self.rows, self.seconds = policy, 0, 0, 0.0

    def __getattr__(self, name: str) -> Any:  # n_obs_steps, n_action_steps, ...
        if name == "policy":  # not set yet (while unpickling)
            raise AttributeError(name)
        return getattr(self.policy, name)

    def predict_action_chunk(self, batch: dict[str, Any]) -> Any:
        started = time.perf_counter()
        chunks = self.policy.predict_action_chunk(batch)
        self.seconds += time.perf_counter() - started
        self.calls, self.rows = self.calls + 1, self.rows + len(chunks)
        return chunks


def journal_records(out_dir: Path | str) -> list[dict[str, Any]]:
    """The episode records of a run's episodes.jsonl (its first line is the journal's header)."""
    return [json.loads(line) for line in (Path(out_dir) / "episodes.jsonl").read_text().splitlines()[1:]]


def timed_evaluation(cfg: EvalConfig) -> dict[str, Any]:
    """Run `workflows.evaluate.evaluate(cfg)` in a temporary out_dir (cfg.out_dir is replaced) and time it:
    wall time (set-up included), env steps executed, env steps/s, mean success; for a policy that acts in
    the engine process, also the time in its calls (per env step) and the rows per call."""
    import dataclasses
    import tempfile

    from envs.registry import make_suite
    from workflows.evaluate import evaluate, policy_under_test

    with tempfile.TemporaryDirectory() as out_dir:
        started = time.perf_counter()
        under_test = policy_under_test(cfg, make_suite(cfg.env))
        timed = TimedPolicy(under_test.policy)
        if not getattr(under_test.policy, "runs_in_worker", False):  # those act in the workers, untimed
            under_test.policy = timed
        results = evaluate(dataclasses.replace(cfg, out_dir=out_dir, progress=False), under_test)
        wall = time.perf_counter() - started
        records = journal_records(out_dir)
    steps = sum(record["length"] for record in records)
    figures = {"wall_s": round(wall, 1), "episodes": len(records), "env_steps": steps,
               "steps_per_s": round(steps / wall, 1), "mean_success": results["suite"]["mean_success"]}
    if timed.calls:
        figures |= {"policy_calls": timed.calls, "rows_per_call": round(timed.rows / timed.calls, 2),
                    "policy_s": round(timed.seconds, 1), "policy_us_per_step": round(1e6 * timed.seconds / steps, 1)}
    return figures
