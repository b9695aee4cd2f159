"""Simulator families are plug-ins: a third one from the test folder runs through the unchanged engine,
and a family is imported only when one of its suites is asked for."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import tests.envs.toy_family  # noqa: F401  (registers the suite toy_reach)
from envs.config import EnvConfig
from envs.registry import available_suites
from envs.rollout import RolloutConfig
from envs.video import read_mp4
from workflows.evaluate import EvalConfig, evaluate

ROOT = Path(__file__).resolve().parents[2]


def test_a_toy_family_from_the_test_folder_runs_through_the_engine(tmp_path):
    assert "toy_reach" in available_suites()
    cfg = EvalConfig(env=EnvConfig(suite="toy_reach"), out_dir=str(tmp_path), progress=False,
                     rollout=RolloutConfig(num_workers=2, envs_per_worker=2, videos_per_task=1, video_size=64))
    results = evaluate(cfg)
    assert results["suite"]["episodes"] == 10 and results["suite"]["errors"] == 0
    assert results["suite"]["mean_success"] == 1.0  # its scripted expert reaches every target
    assert results["metadata"]["protocol"]["suite"] == "toy_reach"
    videos = sorted((tmp_path / "videos").glob("*.mp4"))
    assert [v.name.split("_ep")[0] for v in videos] == ["reach-left", "reach-right"]
    assert read_mp4(videos[0]).shape[1:] == (64, 64, 3)


FIRST_IMPORTS = """
import json, sys
sys.path.insert(0, {root!r})
from envs.config import EnvConfig
from envs.registry import available_suites, make_suite
names = available_suites()
make_suite(EnvConfig(suite="metaworld_mt10"))
print(json.dumps({{"suites": names, "loaded": sorted(m for m in ("libero", "robosuite") if m in sys.modules)}}))
"""


def test_libero_is_imported_only_when_a_libero_suite_is_asked_for():
    result = subprocess.run([sys.executable, "-c", FIRST_IMPORTS.format(root=str(ROOT))], capture_output=True,
                            text=True, timeout=300, env={"MUJOCO_GL": "osmesa", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"libero_object", "libero_90", "metaworld_mt10"} <= set(seen["suites"])  # all registered ...
    assert seen["loaded"] == []  # ... and a Meta-World suite built, without importing libero or robosuite
