"""A Ray cluster of several nodes on this machine, for testing the Ray backend's node failures.

    with LocalRayCluster(worker_nodes=1, cpus_per_node=1) as cluster:
        subprocess.run([sys.executable, "eval.py", "rollout.backend=ray", f"rollout.ray.address={cluster.address}",
                        ...], env=cluster.env)
        cluster.kill_node(1)            # every process of worker node 1, as a lost machine

    python -m scripts.local_ray_cluster --worker-nodes 1     # start one and print its address (Ctrl-C stops it)

Each node is a `ray start --block` on 127.0.0.1 in a process session of its own (node 0 the head, node i
with the custom resource ``node_<i>``), so a node is killed by killing its session: raylet, object store,
agents and the actors it runs. Only the processes started here are touched (never `ray stop`, which stops
every Ray process of the machine). Token authentication as Ray 2.60 sets it up: the head finds a token (a
fresh one, in `token_path`) and turns it on by itself; nodes joining an address do not, so they are started
with RAY_AUTH_MODE=token. Drivers get `env`: the token, RAY_AUTH_MODE unset (the Ray backend's
rollout.ray.auth=auto turns it on).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Self

RAY_VARIABLES = ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _session(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except (ProcessLookupError, PermissionError):
        return None


class LocalRayCluster:
    """`worker_nodes` + 1 Ray nodes on 127.0.0.1, `cpus_per_node` CPUs each; see the module docstring."""

    def __init__(self, worker_nodes: int = 1, cpus_per_node: float = 1, start_timeout_s: float = 90.0):
        self.worker_nodes, self.cpus_per_node, self.start_timeout_s = worker_nodes, cpus_per_node, start_timeout_s
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self._folder = tempfile.TemporaryDirectory(prefix="local_ray_cluster_")
        self.token_path = Path(self._folder.name) / "auth_token"
        self.token_path.write_text(secrets.token_hex(16))
        self.env = {k: v for k, v in os.environ.items() if k not in RAY_VARIABLES}
        self.env["RAY_AUTH_TOKEN_PATH"] = str(self.token_path)  # RAY_AUTH_MODE unset: `ray start` decides
        self.nodes: list[subprocess.Popen] = []

    def start(self) -> LocalRayCluster:
        common = ["--block", "--node-ip-address=127.0.0.1", f"--num-cpus={self.cpus_per_node}", "--num-gpus=0",
                  "--disable-usage-stats"]
        self._start_node(["--head", f"--port={self.port}", "--include-dashboard=false", *common], self.env)
        self._wait_for_nodes(1)
        joining = dict(self.env, RAY_AUTH_MODE="token")  # a node joining an address does not turn tokens on itself
        for index in range(1, self.worker_nodes + 1):
            resources = json.dumps({f"node_{index}": 1})
            self._start_node([f"--address={self.address}", f"--resources={resources}", *common], joining)
        self._wait_for_nodes(self.worker_nodes + 1)
        return self

    def _start_node(self, arguments: list[str], env: dict[str, str]) -> None:
        with open(Path(self._folder.name) / f"node_{len(self.nodes)}.log", "w") as log:  # the node keeps its copy
            self.nodes.append(subprocess.Popen([sys.executable, "-m", "ray.scripts.scripts", "start", *arguments],
                                               env=env, stdout=log, stderr=subprocess.STDOUT,
                                               start_new_session=True))

    def _wait_for_nodes(self, count: int) -> None:
        """Until `count` nodes are alive (asked from a separate driver process, which then leaves)."""
        script = ("import ray, sys, time; ray.init(address=sys.argv[1], logging_level='ERROR'); "
                  "deadline = time.monotonic() + float(sys.argv[3])\n"
                  "while sum(n['Alive'] for n in ray.nodes()) < int(sys.argv[2]):\n"
                  "    assert time.monotonic() < deadline, 'nodes did not join'; time.sleep(0.3)")
        env = dict(self.env, RAY_AUTH_MODE="token")
        for node in self.nodes:
            if node.poll() is not None:
                raise RuntimeError(f"a Ray node exited with status {node.returncode}: {self.node_log(node)}")
        result = subprocess.run([sys.executable, "-c", script, self.address, str(count), str(self.start_timeout_s)],
                                env=env, capture_output=True, text=True, timeout=self.start_timeout_s + 30,
                                check=False)
        if result.returncode != 0:
            raise RuntimeError(f"the local Ray cluster did not reach {count} nodes: {result.stderr[-2000:]}")

    def node_log(self, node: subprocess.Popen) -> str:
        return (Path(self._folder.name) / f"node_{self.nodes.index(node)}.log").read_text()[-2000:]

    def kill_node(self, index: int) -> int:
        """SIGKILL every process of node `index` (0: the head); returns how many there were."""
        session = self.nodes[index].pid
        victims = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc"))) if _session(pid) == session]
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.nodes[index].wait(timeout=30)
        return len(victims)

    def stop(self) -> None:
        """Kill every node still running (worker nodes first), and forget the address `ray start` recorded."""
        for index in reversed(range(len(self.nodes))):
            self.kill_node(index)
        current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
        try:
            if current.read_text().strip().endswith(f":{self.port}"):
                current.unlink()
        except OSError:
            pass
        self._folder.cleanup()

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker-nodes", type=int, default=1)
    parser.add_argument("--cpus-per-node", type=float, default=1)
    args = parser.parse_args()
    with LocalRayCluster(args.worker_nodes, args.cpus_per_node) as cluster:
        print(f"address {cluster.address}; drivers need RAY_AUTH_TOKEN_PATH={cluster.token_path}; Ctrl-C stops it")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
