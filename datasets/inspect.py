"""Summarize and validate demonstration files.

    python -m datasets.inspect data/metaworld_mt10            # a folder of task files
    python -m datasets.inspect libero_90/KITCHEN_SCENE1_demo.hdf5 --state-keys ee_states gripper_states
    python -m datasets.inspect data/demos/metaworld_mt10_64px --all-frames   # check every camera frame

Prints, per file: task, instruction, demos, steps, episode lengths, every obs key with its
per-step shape and dtype, the actions, and the image convention. Camera frames are checked for
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
             f"  demos: {len(lengths)}, steps: {int(lengths.sum())}, length min/mean/max: "
             f"{lengths.min()}/{lengths.mean():.1f}/{lengths.max()}"]
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m datasets.inspect", description=__doc__.split("\n")[0])
    parser.add_argument("path", help="a .hdf5 task file or a folder of them")
    parser.add_argument("--state-keys", nargs="+", default=None,
                        help="obs keys forming obs.state (default: every low-dimensional key)")
    parser.add_argument("--cameras", nargs="*", default=None, help="cameras to check (default: all)")
    parser.add_argument("--all-frames", action="store_true",
                        help="check every camera frame for rendering garbage (default: first, middle, last per demo)")
    args = parser.parse_args(argv)
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
