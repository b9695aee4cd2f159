"""Registry of policies by short stable names (`common.registry.Registry`).

    @register_policy("diffusion", DiffusionConfig)
    class DiffusionPolicy(MultitaskPolicy): ...

    policy = make_policy(config, spec)       # config.name picks the class

Every module of `policies/` is imported before the first lookup, so a new policy is a new file that
registers itself; its config dataclass becomes hydra's schema ``policy/<name>_schema``, which
``configs/policy/<name>.yaml`` extends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from hydra.core.config_store import ConfigStore

from common.registry import Registry
from policies.config import PolicyConfig
from policies.spec import PolicySpec

if TYPE_CHECKING:
    from policies.base import MultitaskPolicy

POLICIES: Registry[tuple[type, type[PolicyConfig]]] = Registry("policy", discover="policies")


def register_policy(name: str, config_class: type[PolicyConfig]) -> Callable[[type], type]:
    """Class decorator: register a policy and its config (also as hydra schema ``policy/<name>_schema``)."""

    def register(policy_class: type) -> type:
        POLICIES.register(name, (policy_class, config_class))
        ConfigStore.instance().store(group="policy", name=f"{name}_schema", node=config_class(name=name))
        return policy_class

    return register


def config_class(name: str) -> type[PolicyConfig]:
    return POLICIES.get(name)[1]


def make_policy(config: PolicyConfig, spec: PolicySpec) -> "MultitaskPolicy":
    """Build the registered policy named ``config.name`` for `spec`."""
    policy_class, expected = POLICIES.get(config.name)
    if not isinstance(config, expected):
        raise TypeError(f"policy {config.name!r} needs a {expected.__name__}, got {type(config).__name__}")
    return policy_class(config, spec)
