"""train.py from a LeRobotDataset v3 folder (dataset=lerobot): the suite's task matched by its instruction, state
and an AV1 camera through the same windows, statistics and training loop as HDF5 demonstrations."""

from __future__ import annotations

import numpy as np

from policies.checkpoint import load_policy
from tests.datasets.lerobot_folder import LeRobotEpisode, marked_frames, write_lerobot_folder
from tests.test_train import compose_train
from workflows.train import train


def test_train_reads_a_lerobot_folder_for_the_suites_tasks(tmp_path):
    rng = np.random.default_rng(0)
    episodes = [LeRobotEpisode(0, rng.normal(size=(20, 39)), rng.uniform(-1, 1, (20, 4)),
                               {"observation.images.corner": marked_frames(20, 32, 32, e)}) for e in range(3)]
    folder = write_lerobot_folder(tmp_path / "set", ["move the gripper to the goal position"], episodes,
                                  video_keys=("observation.images.corner",))
    cfg = compose_train([
        "env=metaworld_mt1", "env.task=reach-v3", "env.cameras=[corner]", "env.image_size=32", "dataset=lerobot",
        f"dataset.path={folder}", f"out_dir={tmp_path / 'run'}", "progress=false", "final_eval=false",
        "policy.unet.down_dims=[16,32]", "policy.obs_encoder.state_hidden_dim=32",
        "policy.obs_encoder.image_channels=[8,16]", "policy.conditioning.text=false", "trainer.num_steps=3",
        "trainer.batch_size=4", "trainer.checkpoint_every=3", "trainer.log_every=1", "trainer.dataloader_workers=1"])
    result = train(cfg)
    assert result["step"] == 3 and not list((tmp_path / "set").glob("*.hdf5"))  # nothing collected into it
    policy, record = load_policy(tmp_path / "run" / "checkpoints" / "last")
    assert [t.name for t in policy.spec.tasks] == ["reach-v3"] and policy.spec.image_shapes == {"corner": (3, 32, 32)}
    assert record["metadata"]["dataset"] == str(folder)
    assert list(folder.glob(".stats_*.json"))  # statistics cached beside the folder, as for HDF5
