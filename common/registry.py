"""One registry idiom for everything chosen by name: policies, denoisers, text encoders, suites.

    DENOISERS = Registry("denoiser")

    @DENOISERS.register("unet")
    class ConditionalUnet1D(nn.Module): ...

    DENOISERS.get("unet")        # the class; an unknown name raises KeyError listing the known ones

A registry may discover its entries: `Registry("suite", discover="envs")` imports every subpackage
of `envs` (each simulator family registers its suites when imported) before the first lookup, so a
new family or method is a new folder or file, never an edit of a list or a switch.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, discover: str | None = None, packages_only: bool = False):
        """`kind` names the entries in errors; `discover` is a package whose submodules (or subpackages
        only, with `packages_only`) register entries when imported."""
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._discover, self._packages_only = discover, packages_only
        self._discovered = discover is None

    def register(self, name: str, entry: T | None = None) -> Callable[[T], T] | T:
        """Register `entry` under `name`, or, without `entry`, return a decorator that does."""
        if entry is not None:
            return self._add(name, entry)
        return lambda decorated: self._add(name, decorated)

    def _add(self, name: str, entry: T) -> T:
        if name in self._entries and self._entries[name] is not entry:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def discover(self) -> None:
        """Import the modules that register entries (once)."""
        if self._discovered:
            return
        self._discovered = True
        package = importlib.import_module(self._discover)
        for module in pkgutil.iter_modules(package.__path__):
            if module.ispkg or not self._packages_only:
                importlib.import_module(f"{self._discover}.{module.name}")

    def get(self, name: str) -> T:
        self.discover()
        if name not in self._entries:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        return self._entries[name]

    def __contains__(self, name: str) -> bool:
        self.discover()
        return name in self._entries

    def names(self) -> list[str]:
        self.discover()
        return sorted(self._entries)
