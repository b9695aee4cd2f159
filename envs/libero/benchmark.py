"""What the `libero` package says about a task: its suite's benchmark object and BDDL file.
Everything here imports libero lazily, inside the functions."""

from __future__ import annotations

import contextlib
import io
from typing import Any


def libero_benchmark(name: str) -> Any:
    """The ``libero.libero.benchmark`` suite object of `name`, task order 0 (its info line silenced)."""
    from libero.libero import benchmark

    with contextlib.redirect_stdout(io.StringIO()):  # "[info] Applying task order index 0 ..."
        return benchmark.get_benchmark(name)(task_order_index=0)


def bddl_file(suite_name: str, task_index: int) -> str:
    """Path of the BDDL file of one task (bundled in the package)."""
    return libero_benchmark(suite_name).get_task_bddl_file_path(task_index)
