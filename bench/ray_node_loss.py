"""A Ray evaluation that loses a node mid-run: every episode accounted for, the same records as without failure.

    python -m bench.ray_node_loss                        # MT10 experts, 5 episodes per task, 2 nodes of 1 CPU
    python -m bench.ray_node_loss --episodes 10 --kill-after 20

A head and a worker node (`ray start` on 127.0.0.1, one CPU each, scripts/local_ray_cluster.py) with one
actor each; `python eval.py rollout.backend=ray` joins them. Once both actors run and `--kill-after`
episodes are journaled, every process of the worker node is killed (SIGKILL: raylet, object store,
actor), as a lost machine. Then the same evaluation runs with the local engine, and the two journals are
compared. Writes bench/results/ray_node_loss.json: episodes expected, journaled, distinct, errors,
retries, wall times, and whether the records (success, length, reward) match the failure-free run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import journal_records, save
from scripts.local_ray_cluster import LocalRayCluster

ROOT = Path(__file__).resolve().parents[1]


def eval_command(out_dir: Path, episodes: int, backend: str, address: str | None = None) -> list[str]:
    command = [sys.executable, "eval.py", "env=metaworld_mt10", f"episodes_per_task={episodes}",
               f"rollout.backend={backend}", "rollout.envs_per_worker=2", "rollout.videos_per_task=0",
               f"out_dir={out_dir}", "progress=false"]
    if address:
        command += [f"rollout.ray.address={address}", "rollout.ray.num_actors=2"]
    return command


def run_with_node_loss(out_dir: Path, episodes: int, kill_after: int) -> dict:
    with LocalRayCluster(worker_nodes=1, cpus_per_node=1) as cluster:
        start = time.monotonic()
        driver = subprocess.Popen(eval_command(out_dir, episodes, "ray", cluster.address), cwd=ROOT, env=cluster.env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(driver.stdout), daemon=True)
        reader.start()
        path = out_dir / "episodes.jsonl"
        while driver.poll() is None:
            ready = sum("Ray actor" in line and "ready" in line for line in lines)
            if ready == 2 and path.exists() and len(path.read_text().splitlines()) > kill_after:
                break
            time.sleep(0.05)
        if driver.poll() is not None:
            raise RuntimeError("the run ended before the node could be killed:\n" + "".join(lines))
        killed_at, journaled_at_kill = time.monotonic() - start, len(path.read_text().splitlines()) - 1
        processes = cluster.kill_node(1)
        driver.wait()
        reader.join(timeout=10)
        wall = time.monotonic() - start
    if driver.returncode != 0:
        raise RuntimeError("the run failed:\n" + "".join(lines))
    return {"wall_s": round(wall, 1), "node_killed_at_s": round(killed_at, 1),
            "episodes_journaled_when_killed": journaled_at_kill, "processes_killed": processes,
            "driver_log_retries": [line.strip() for line in lines if "running it again" in line]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=5, help="episodes per MT10 task")
    parser.add_argument("--kill-after", type=int, default=10, help="kill the worker node after this many episodes")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        ray_dir, local_dir = Path(folder) / "ray", Path(folder) / "local"
        figures = run_with_node_loss(ray_dir, args.episodes, args.kill_after)
        start = time.monotonic()
        subprocess.run(eval_command(local_dir, args.episodes, "local"), cwd=ROOT, check=True, capture_output=True)
        figures["local_run_wall_s"] = round(time.monotonic() - start, 1)
        records, reference = journal_records(ray_dir), journal_records(local_dir)
        results = json.loads((ray_dir / "results.json").read_text())
    keys = sorted((r["task"], r["episode"]) for r in records)
    def outcome(rs):
        return sorted((r["task"], r["episode"], r["success"], r["length"], r["reward"]) for r in rs)
    figures |= {"suite": "metaworld_mt10", "policy": "expert", "episodes_expected": 10 * args.episodes,
                "episodes_journaled": len(records), "episodes_distinct": len(set(keys)),
                "errors": sum(r["status"] == "error" for r in records), "retries": sum(r["retries"] for r in records),
                "results_complete": results["metadata"]["complete"],
                "same_records_as_local_run_without_failure": outcome(records) == outcome(reference),
                "load_average_before": [round(x, 2) for x in load_before],
                "load_average_after": [round(x, 2) for x in os.getloadavg()]}
    print(json.dumps(figures, indent=1))
    save("ray_node_loss", figures)


if __name__ == "__main__":
    main()
