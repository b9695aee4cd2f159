"""Joining a Ray cluster, or starting one on this machine, with the authentication Ray 2.60 expects.

    connect(RayConfig(address="10.0.0.1:6379"))     # join; RayConfig() starts a local cluster

Ray 2.60 turns token authentication on by itself for a new local cluster (`ray.init()`, which creates
~/.ray/auth_token) and for `ray start --head` when it finds a token, but not for a driver or node joining an
address; `auth_mode` follows the cluster (docs/ray.md).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from envs.rollout import RayAuth, RayConfig

log = logging.getLogger(__name__)

AUTH_MODE_VARIABLE = "RAY_AUTH_MODE"


def token_available() -> bool:
    """Whether Ray finds an authentication token: RAY_AUTH_TOKEN, the file RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return True
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    return Path(path).is_file() if path else (Path.home() / ".ray" / "auth_token").is_file()


def auth_mode(auth: RayAuth, address: str | None) -> str | None:
    """The RAY_AUTH_MODE to run with; None leaves Ray's default.

    `ray start` turns token authentication on when it finds a token, and a new local cluster
    (`ray.init()` without an address) always does, creating ~/.ray/auth_token if needed; but a driver
    joining an address turns it on only if told, and is then refused ("token is missing or incorrect").
    `auto` follows the cluster: token mode whenever a token is there to send (also accepted by a cluster
    without authentication); a mode the user set in RAY_AUTH_MODE is kept.
    """
    if auth != RayAuth.auto:
        return str(auth)
    if AUTH_MODE_VARIABLE in os.environ or address is None:
        return None
    return "token" if token_available() else None


def configure_auth(auth: RayAuth, address: str | None) -> None:
    """Export RAY_AUTH_MODE before `ray.init` (see `auth_mode`)."""
    mode = auth_mode(auth, address)
    if mode is None or os.environ.get(AUTH_MODE_VARIABLE) == mode:
        return
    os.environ[AUTH_MODE_VARIABLE] = mode
    from ray._raylet import Config

    Config.initialize("")  # Ray read RAY_AUTH_MODE when imported; re-read it, as ray.init does for a new cluster


def connect(config: RayConfig, cpus_needed: float = 0.0) -> None:
    """Join the cluster at `config.address`, or start a local one; nothing when Ray is already initialised.

    A local cluster declares at least `cpus_needed` CPUs, so asking for more actors than cores
    oversubscribes them as the local engine's workers would, rather than waiting forever.
    """
    import ray

    if ray.is_initialized():
        return
    configure_auth(config.auth, config.address)
    # "local" starts a new cluster even where RAY_ADDRESS or a `ray start` on this machine names one
    kwargs: dict[str, Any] = {"address": config.address or "local", "include_dashboard": False,
                              "logging_level": logging.WARNING}
    if config.working_dir:
        kwargs["runtime_env"] = {"working_dir": config.working_dir, "excludes": [".git", "outputs", "data"]}
    if config.address is None:
        kwargs["num_cpus"] = max(os.cpu_count() or 1, int(cpus_needed + 0.999))
    ray.init(**kwargs)
    log.info("Ray: %s, resources %s", config.address or "local cluster", ray.cluster_resources())
