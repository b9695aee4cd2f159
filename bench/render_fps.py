"""Offscreen rendering speed on CPU: frames/s of Meta-World cameras, fast mode on and off.

    python -m bench.render_fps                 # MUJOCO_GL defaults to osmesa without a GPU
    MUJOCO_GL=egl python -m bench.render_fps   # on a GPU machine

Renders the same state repeatedly (render cost only, no physics) for one camera at 128x128,
two cameras at 128x128 and one at 256x256, each with fast=True (shadows and reflections off)
and fast=False. One process, so the figures are per core. Writes bench/results/render_fps.json.
"""

from __future__ import annotations

import argparse
import time

import envs  # noqa: F401  (selects the GL backend before mujoco is imported)
from bench.common import save
from envs.config import EnvConfig
from envs.rendering import CameraRenderer
from envs.suites import make_suite

CASES = [(("corner",), 128), (("corner", "topview"), 128), (("corner",), 256)]


def frames_per_second(sim, cameras: tuple[str, ...], size: int, fast: bool, seconds: float) -> float:
    with CameraRenderer(sim.model, cameras, size, size, fast=fast) as renderer:
        renderer.render(sim.data)  # warm-up: context and textures
        frames, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            renderer.render(sim.data)
            frames += len(cameras)
        return frames / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="pick-place-v3")
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per case")
    args = parser.parse_args()
    suite = make_suite(EnvConfig(suite="metaworld_mt1", task=args.task))
    env = suite.make_env(suite.tasks[0])
    env.reset(seed=0, options={"episode": 0})
    rows = []
    for cameras, size in CASES:
        for fast in (True, False):
            fps = frames_per_second(env.unwrapped.sim, cameras, size, fast, args.seconds)
            rows.append({"cameras": list(cameras), "size": size, "fast": fast, "frames_per_s": round(fps, 1)})
            print(f"{'+'.join(cameras):>15} {size}x{size} fast={fast!s:5}: {fps:7.1f} frames/s")
    env.close()
    save("render_fps", {"task": args.task, "per_core": True, "runs": rows})


if __name__ == "__main__":
    main()
