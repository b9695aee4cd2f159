"""The comparison as a user runs it: `python train.py -m` over methods x seeds, then `python -m
workflows.compare` on the sweep folder. Tiny runs (MT1 reach, a few steps), real simulator and CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[2]


def test_a_multirun_over_methods_and_seeds_feeds_the_comparison(tmp_path):
    sweep = tmp_path / "sweep"
    command = [sys.executable, "train.py", "-m", "env=metaworld_mt1", "env.task=reach-v3", "env.max_episode_steps=40",
               f"dataset.path={tmp_path / 'demos'}", "collect_episodes_per_task=3", "policy.unet.down_dims=[16,32]",
               "policy.obs_encoder.state_hidden_dim=32", "policy.conditioning.text=false", "trainer.num_steps=4",
               "trainer.batch_size=8", "trainer.log_every=2", "trainer.checkpoint_every=4",
               "trainer.multitask.tasks_per_batch=1", "final_eval_episodes_per_task=2", "rollout.num_workers=1",
               "rollout.envs_per_worker=2", "rollout.videos_per_task=1", "rollout.video_size=48", "progress=false",
               f"hydra.sweep.dir={sweep}", "trainer.multitask.method=sum,upgrad", "trainer.seed=0,1"]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    runs = sorted(p for p in sweep.iterdir() if (p / "final_eval" / "results.json").exists())
    configs = {f"{c.trainer.multitask.method}/{c.trainer.seed}" for c in (OmegaConf.load(p / "config.yaml") for p in runs)}
    assert configs == {"sum/0", "sum/1", "upgrad/0", "upgrad/1"}  # one folder per job, each saying what it ran
    out = tmp_path / "compare"
    compared = subprocess.run([sys.executable, "-m", "workflows.compare", str(sweep), "--baseline", "sum",
                               "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert compared.returncode == 0, compared.stdout[-3000:] + compared.stderr[-3000:]
    report = json.loads((out / "compare.json").read_text())
    assert (out / "compare.html").exists() and (out / "compare.md").exists()
    text = json.dumps(report)
    assert '"upgrad"' in text and '"sum"' in text
