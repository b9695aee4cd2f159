"""The layout's boundaries, read from the imports of every source file:

- policies/, envs/ and datasets/ never import one another; common/ imports nothing of the project;
- training/ knows policies (and common), never the simulators or the data on disk;
- the generic parts of envs/ (everything but the family subpackages) import no simulator family;
- the top level holds only the entry points.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("policies", "envs", "datasets")
PROJECT = ("common", "policies", "envs", "datasets", "training", "workflows")
FAMILY_MODULES = ("metaworld", "libero", "robosuite", "envs.metaworld", "envs.libero")


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, by its full dotted name."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def top_level(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def sources(package: str) -> list[Path]:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no Python files"
    return files


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_no_sibling_package(package):
    for path in sources(package):
        forbidden = top_level(imported_modules(path)) & (set(PROJECT) - {package, "common"})
        assert not forbidden, f"{path.relative_to(ROOT)} imports {sorted(forbidden)}"


def test_common_is_a_leaf():
    for path in sources("common"):
        assert not top_level(imported_modules(path)) & (set(PROJECT) - {"common"}), path


def test_training_knows_policies_but_not_simulators_or_data():
    for path in sources("training"):
        assert not top_level(imported_modules(path)) & {"envs", "datasets", "workflows"}, path


def test_generic_simulation_code_names_no_family():
    generic = [p for p in sources("envs") if p.parent == ROOT / "envs"] + sources("workflows") + sources("training")
    for path in generic:
        named = {m for m in imported_modules(path) if m.startswith(FAMILY_MODULES)}
        assert not named, f"{path.relative_to(ROOT)} imports {sorted(named)}"


def test_the_top_level_holds_only_the_entry_points():
    assert sorted(p.name for p in ROOT.glob("*.py")) == ["collect.py", "eval.py", "train.py"]
