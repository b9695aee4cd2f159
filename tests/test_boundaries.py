"""policies/, envs/ and datasets/ never import one another; they share only schema.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("policies", "envs", "datasets")


def imported_top_level_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_no_sibling_package(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no Python files"
    for path in files:
        forbidden = imported_top_level_modules(path) & (set(PACKAGES) - {package})
        assert not forbidden, f"{path.relative_to(ROOT)} imports {sorted(forbidden)}"


def test_schema_is_a_leaf():
    assert not imported_top_level_modules(ROOT / "schema.py") & set(PACKAGES)
