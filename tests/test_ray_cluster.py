"""The Ray backend on a two-node cluster on this machine (a head and a worker `ray start` on 127.0.0.1, one
CPU each): `python eval.py` joins it with the token `ray start` turned on, and one node is killed mid-run."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from scripts.local_ray_cluster import LocalRayCluster
from tests.test_eval import _journal

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("ray")


@pytest.mark.slow
def test_a_run_survives_a_lost_node_with_every_episode_accounted_for(tmp_path):
    """One actor per node; the worker node dies once three episodes are journaled. Its actor's running episode
    is re-queued and run on the head's actor (Ray cannot restart the actor: no node has a free CPU), and the
    run completes: every episode exactly once, the lost one counted as retried, none an error."""
    episodes = 30  # time for both actors to start on a busy machine before the kill
    with LocalRayCluster(worker_nodes=1, cpus_per_node=1) as cluster:
        command = [sys.executable, "eval.py", "env=metaworld_mt1", "env.task=reach-v3",
                   f"episodes_per_task={episodes}", "env.terminate_on_success=false", "env.max_episode_steps=150",
                   "rollout.backend=ray", f"rollout.ray.address={cluster.address}", "rollout.ray.num_actors=2",
                   "rollout.envs_per_worker=1", "rollout.videos_per_task=0", f"out_dir={tmp_path}", "progress=false"]
        driver = subprocess.Popen(command, cwd=ROOT, env=cluster.env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(driver.stdout), daemon=True)
        reader.start()
        journal = tmp_path / "episodes.jsonl"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and driver.poll() is None:  # both actors running, 2 episodes done
            ready = sum("Ray actor" in line and "ready" in line for line in lines)
            if ready == 2 and journal.exists() and len(journal.read_text().splitlines()) >= 3:
                break
            time.sleep(0.05)
        assert driver.poll() is None and len(journal.read_text().splitlines()) < episodes, "".join(lines)
        assert cluster.kill_node(1) >= 2  # raylet, agents, the actor...
        driver.wait(timeout=300)
        reader.join(timeout=10)
        output = "".join(lines)
    assert driver.returncode == 0, output
    records = _journal(tmp_path)
    assert sorted(r["episode"] for r in records) == list(range(episodes))  # each exactly once
    assert all(r["status"] == "ok" for r in records)
    assert sum(r["retries"] for r in records) == 1, output  # the episode running on the lost node
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["metadata"]["complete"] is True
    assert results["tasks"]["reach-v3"]["episodes"] == episodes and results["suite"]["retries"] == 1
