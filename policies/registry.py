"""Registry of policies by short stable names.

    @register_policy("diffusion", DiffusionConfig)
    class DiffusionPolicy(MultitaskPolicy): ...

    policy = make_policy(config, spec)       # config.name picks the class
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from hydra.core.config_store import ConfigStore

from policies.config import PolicyConfig
from policies.spec import PolicySpec

if TYPE_CHECKING:
    from policies.base import MultitaskPolicy

POLICIES: dict[str, tuple[type, type[PolicyConfig]]] = {}


def register_policy(name: str, config_class: type[PolicyConfig]) -> Callable[[type], type]:
    """Class decorator: register a policy and its config (also as hydra schema ``policy/<name>_schema``)."""

    def register(policy_class: type) -> type:
        if name in POLICIES:
            raise ValueError(f"policy {name!r} is registered twice")
        POLICIES[name] = (policy_class, config_class)
        ConfigStore.instance().store(group="policy", name=f"{name}_schema", node=config_class(name=name))
        return policy_class

    return register


BUILTIN_MODULES = ("policies.diffusion", "policies.transformer")


def register_builtin_policies() -> None:
    """Import the modules whose classes register themselves (also their hydra schemas)."""
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def _entry(name: str) -> tuple[type, type[PolicyConfig]]:
    register_builtin_policies()
    if name not in POLICIES:
        raise KeyError(f"unknown policy {name!r}; known: {sorted(POLICIES)}")
    return POLICIES[name]


def config_class(name: str) -> type[PolicyConfig]:
    return _entry(name)[1]


def make_policy(config: PolicyConfig, spec: PolicySpec) -> "MultitaskPolicy":
    """Build the registered policy named ``config.name`` for `spec`."""
    policy_class, expected = _entry(config.name)
    if not isinstance(config, expected):
        raise TypeError(f"policy {config.name!r} needs a {expected.__name__}, got {type(config).__name__}")
    return policy_class(config, spec)


def registered_names() -> list[str]:
    register_builtin_policies()
    return sorted(POLICIES)
