"""Training windows per second that `MultitaskSequenceDataset` serves from one process.

    python -m bench.sampling_throughput
    python -m bench.sampling_throughput --seconds 5

Writes synthetic task files in our layout to a temporary folder: 10 tasks x 50 demos x 90-110
steps of state (39-d) and actions (4-d); and 5 tasks x 4 demos of the same length with two
128x128 cameras, uncompressed, once contiguous (as robomimic / LIBERO write them) and once in
one chunk per frame (as datasets.writer writes them). Reads windows with
To=2, T=16, Ta=8 in shuffled order with `dataset[i]` (no DataLoader) for state only, and for
two cameras read from HDF5 on demand and from the in-RAM cache. The files were just written,
so HDF5 reads hit the OS page cache: a cold disk is slower. Also times collated batches of 256
through a DataLoader with num_workers=0. One process with one torch thread, as each DataLoader
worker runs (collating with several intra-op threads on a busy machine is erratic).
Writes bench/results/sampling_throughput.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader

from bench.common import save
from datasets import layout
from datasets.config import DatasetConfig
from datasets.sequence_dataset import MultitaskSequenceDataset

WINDOW = dict(n_obs_steps=2, horizon=16, n_action_steps=8)
CAMERAS = ("corner", "topview")


def write_tasks(folder: Path, tasks: int, demos: int, cameras: tuple[str, ...], seed: int = 0,
                chunked: bool = False) -> None:
    rng = np.random.default_rng(seed)
    for task in range(tasks):
        with h5py.File(folder / f"task-{task:02d}.hdf5", "w") as file:
            data = file.create_group(layout.DATA)
            data.attrs.update(task=f"task-{task:02d}", suite="synthetic", instruction=f"do task {task}",
                              task_index=task, **{layout.IMAGE_CONVENTION: "opencv"})
            for demo in range(demos):
                length = int(rng.integers(90, 111))
                group = data.create_group(layout.demo_name(demo))
                group.attrs[layout.NUM_SAMPLES] = length
                group.create_dataset("obs/state", data=rng.normal(size=(length, 39)).astype(np.float32))
                group.create_dataset(layout.ACTIONS, data=rng.uniform(-1, 1, (length, 4)).astype(np.float32))
                for camera in cameras:
                    frames = rng.integers(0, 256, (length, 128, 128, 3), dtype=np.uint8)
                    chunks = (1, *frames.shape[1:]) if chunked else None
                    group.create_dataset(f"obs/{camera}_rgb", data=frames, chunks=chunks)


def windows_per_second(dataset: MultitaskSequenceDataset, seconds: float) -> float:
    order = np.random.default_rng(0).permutation(len(dataset))
    dataset[int(order[0])]  # open handles
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for i in order[count % len(order): count % len(order) + 500]:
            dataset[int(i)]
        count += 500
    return count / (time.perf_counter() - start)


def batched_windows_per_second(dataset: MultitaskSequenceDataset, seconds: float, batch_size: int = 256) -> float:
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=0,
                        generator=torch.Generator().manual_seed(0))
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for batch in loader:
            count += len(batch["action"])
            if time.perf_counter() - start >= seconds:
                break
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="timing per case")
    args = parser.parse_args()
    torch.set_num_threads(1)
    figures: dict[str, object] = {"window": WINDOW, "timing_seconds_per_case": args.seconds, "processes": 1,
                                 "torch_threads": 1}
    with tempfile.TemporaryDirectory() as tmp:
        state_dir = Path(tmp, "state")
        state_dir.mkdir()
        write_tasks(state_dir, tasks=10, demos=50, cameras=())
        for layout_name, chunked in (("contiguous", False), ("chunked", True)):
            Path(tmp, layout_name).mkdir()
            write_tasks(Path(tmp, layout_name), tasks=5, demos=4, cameras=CAMERAS, seed=1, chunked=chunked)
        state = MultitaskSequenceDataset(DatasetConfig(path=str(state_dir), **WINDOW))
        figures["state_only"] = {"tasks": 10, "episodes": state.num_episodes, "windows": len(state),
                                 "windows_per_s": round(windows_per_second(state, args.seconds)),
                                 "batched_256_windows_per_s": round(batched_windows_per_second(state, args.seconds))}
        for case, folder, cache in (("hdf5_contiguous", "contiguous", False), ("hdf5_chunked", "chunked", False),
                                    ("cached", "chunked", True)):
            config = DatasetConfig(path=str(Path(tmp, folder)), cameras=list(CAMERAS), cache_images=cache, **WINDOW)
            started = time.perf_counter()
            images = MultitaskSequenceDataset(config)
            build_s = time.perf_counter() - started
            figures[f"two_cameras_128_{case}"] = {
                "tasks": 5, "episodes": images.num_episodes, "windows": len(images), "build_s": round(build_s, 2),
                "windows_per_s": round(windows_per_second(images, args.seconds)),
                "batched_256_windows_per_s": round(batched_windows_per_second(images, args.seconds))}
            images.close()
    for case, values in figures.items():
        print(f"{case}: {values}")
    save("sampling_throughput", figures)


if __name__ == "__main__":
    main()
