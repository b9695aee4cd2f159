"""Summarize and validate demonstration files.

    python -m datasets.inspect data/metaworld_mt10            # a folder of task files
    python -m datasets.inspect libero_90/KITCHEN_SCENE1_demo.hdf5 --state-keys ee_states gripper_states
    python -m datasets.inspect data/demos/metaworld_mt10_64px --all-frames   # check every camera frame
    python -m datasets.inspect /data/libero_object_lerobot                 # a LeRobotDataset v3 folder

Prints, per file: task, instruction, demos, steps, episode lengths, every obs key with its
per-step shape and dtype, the actions, and the image convention. A LeRobotDataset v3 folder (one with
meta/info.json) is read as `dataset.format=lerobot` reads it: version, fps, episodes, frames, tasks,
every feature (dtype, shape, video codec, what it is used as). Camera frames are checked for
rendering garbage (noise; `common.frames`): the first, middle and last frame of every demo and
camera, or every frame with ``--all-frames``. Exit code 1 (with the error on stderr) when any
file is invalid, 0 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import h5py

from common.frames import frame_problem
from datasets.config import DatasetConfig, DatasetFormat
from datasets.lerobot import LeRobotSource, is_lerobot_folder
from datasets.reader import (
    DatasetError,
    TaskEpisodes,
    check_compatible,
    image_dataset_path,
    read_task_file,
    resolve_task_files,
)


def summary(task_file: TaskEpisodes) -> str:
    lengths = task_file.lengths
    lines = [str(task_file.path),
             f"  task: {task_file.task}" + (f" (suite {task_file.suite})" if task_file.suite else ""),
             f"  instruction: {task_file.instruction}",
             (f"  demos: {len(lengths)}, steps: {int(lengths.sum())}, length min/mean/max: "
              f"{lengths.min()}/{lengths.mean():.1f}/{lengths.max()}")]
    for key, (shape, dtype) in sorted(task_file.obs_specs.items()):
        use = "image" if key.endswith("_rgb") else ("state" if key in task_file.state_keys else "unused")
        lines.append(f"  obs/{key}: {shape} {dtype} [{use}]")
    lines.append(f"  actions: ({task_file.action_dim},) {task_file.action_dtype}")
    upright = "stored upside down, flipped when read" if task_file.flip_images else "stored upright"
    lines.append(f"  image convention: {task_file.image_convention} ({upright})")
    return "\n".join(lines)


def check_images(task_file: TaskEpisodes, all_frames: bool = False) -> None:
    """Raise DatasetError naming every demo and camera with frames that are noise.

    Checks the first, middle and last frame of each demo and camera, or every frame with `all_frames`.
    """
    problems = []
    with h5py.File(task_file.path, "r") as file:
        for episode in task_file.episodes:
            for camera in task_file.cameras:
                frames = file[image_dataset_path(episode.demo, camera)]
                steps = range(len(frames)) if all_frames else sorted({0, len(frames) // 2, len(frames) - 1})
                bad = [(t, problem) for t in steps if (problem := frame_problem(frames[t])) is not None]
                if bad:
                    problems.append(f"{frames.name}: {len(bad)} of {len(steps)} checked frames are garbage, "
                                    f"first at step {bad[0][0]}: {bad[0][1]}")
    if problems:
        raise DatasetError(f"{task_file.path}: corrupt camera frames (delete the file and collect again):\n  "
                           + "\n  ".join(problems))


def lerobot_summary(source: LeRobotSource) -> str:
    """The summary of a LeRobotDataset v3 folder: episodes, tasks and every feature, with what it is used as."""
    episodes = [e for task_file in source.task_files for e in task_file.episodes]
    lengths = [e.length for e in episodes]
    lines = [str(source.root), f"  LeRobotDataset {source.info['codebase_version']}, {source.info['fps']} fps",
             (f"  episodes: {len(episodes)}, frames: {sum(lengths)}, length min/mean/max: "
              f"{min(lengths)}/{sum(lengths) / len(lengths):.1f}/{max(lengths)}")]
    for index, text in sorted(source.tasks.items()):
        count = sum(len(tf.episodes) for tf in source.task_files if tf.instruction == text)
        lines.append(f"  task {index}: {text} ({count} episodes)")
    cameras = {feature: camera for camera, feature in source.camera_features.items()}
    for key, feature in sorted(source.features.items()):
        use = ("state" if key in source.state_keys else "action" if key == source.lerobot.action_feature
               else f"camera {cameras[key]}" if key in cameras else "unused")
        codec = f" {source.video_codec(key)}" if feature["dtype"] == "video" and key in cameras else ""
        lines.append(f"  {key}: {feature['dtype'] + ' ' if feature['dtype'] in ('video', 'image') else ''}"
                     f"{tuple(feature['shape'])}{'' if feature['dtype'] in ('video', 'image') else ' ' + feature['dtype']}"
                     f"{codec} [{use}]")
    lines.append(f"  image orientation: {source.lerobot.image_orientation} (dataset.lerobot.image_orientation)")
    return "\n".join(lines)


def check_lerobot_frames(source: LeRobotSource, all_frames: bool = False) -> None:
    """Decode the first, middle and last frame (or every frame) of every episode and camera; raise DatasetError
    naming each that cannot be read or is noise."""
    problems = []
    for number, task_file in enumerate(source.task_files):
        for episode in task_file.episodes:
            for camera in task_file.cameras:
                steps = range(episode.length) if all_frames else sorted({0, episode.length // 2, episode.length - 1})
                frames = source.frames(number, episode.demo, camera, 0, episode.length)[list(steps)]
                bad = [(t, problem) for t, frame in zip(steps, frames) if (problem := frame_problem(frame))]
                if bad:
                    problems.append(f"{episode.demo} camera {camera}: {len(bad)} of {len(steps)} checked frames are "
                                    f"garbage, first at step {bad[0][0]}: {bad[0][1]}")
    if problems:
        raise DatasetError(f"{source.root}: corrupt camera frames:\n  " + "\n  ".join(problems))


def inspect_lerobot(args: argparse.Namespace) -> int:
    config = DatasetConfig(path=args.path, format=DatasetFormat.lerobot, state_keys=args.state_keys or [],
                           cameras=args.cameras or [])
    try:
        source = LeRobotSource(config, all_state=args.state_keys is None, all_cameras=args.cameras is None)
        print(lerobot_summary(source))
        check_lerobot_frames(source, args.all_frames)
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        print("0 of 1 folders read; 1 error(s)")
        return 1
    print("1 LeRobot folder read; all valid")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m datasets.inspect", description=__doc__.split("\n")[0])
    parser.add_argument("path", help="a .hdf5 task file, a folder of them, or a LeRobotDataset v3 folder")
    parser.add_argument("--state-keys", nargs="+", default=None,
                        help="obs keys forming obs.state (default: every low-dimensional key)")
    parser.add_argument("--cameras", nargs="*", default=None, help="cameras to check (default: all)")
    parser.add_argument("--all-frames", action="store_true",
                        help="check every camera frame for rendering garbage (default: first, middle, last per demo)")
    args = parser.parse_args(argv)
    if is_lerobot_folder(args.path):
        return inspect_lerobot(args)
    errors, task_files = [], []
    try:
        files = resolve_task_files(args.path)
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for path in files:
        try:
            task_file = read_task_file(path, args.state_keys, args.cameras)
            print(summary(task_file))
            check_images(task_file, args.all_frames)
            task_files.append(task_file)
        except DatasetError as error:
            errors.append(str(error))
            print(f"error: {error}", file=sys.stderr)
    if task_files and not errors:
        try:
            check_compatible(task_files)
        except DatasetError as error:
            errors.append(str(error))
            print(f"error: {error}", file=sys.stderr)
    verdict = f"{len(errors)} error(s)" if errors else "all valid"
    print(f"{len(task_files)} of {len(files)} files read; {verdict}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
