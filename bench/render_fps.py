"""Offscreen rendering speed: frames/s of Meta-World cameras with CameraRenderer, fast on and off.

    MUJOCO_GL=osmesa python -m bench.render_fps              # CPU (the default without a GPU)
    MUJOCO_GL=egl python -m bench.render_fps                 # GPU machine
    MUJOCO_GL=osmesa python -m bench.render_fps --seconds 2 --task push-v3

Render only: the env is reset once and the same state is rendered again and again (each
render still rebuilds the scene with mjv_updateScene), so the figures are rendering cost
without physics. Cases: camera "corner" at 128x128, "corner" + "topview" at 128x128 and
"corner" at 256x256, each with fast=True and fast=False. One process; "frames/s" counts
images (a two-camera render is two frames) per wall second, "per CPU s" per second of this
process's CPU time, which is the per-core figure even if the GL driver used threads.
Prints a table and writes bench/results/render_fps.json with the machine's facts.
"""

from __future__ import annotations

import argparse
import time

from envs.rendering import select_gl_backend

select_gl_backend()  # before mujoco is imported (by metaworld)

import metaworld  # noqa: E402
import mujoco  # noqa: E402

from bench.common import save  # noqa: E402
from envs.rendering import CameraRenderer  # noqa: E402

CASES = [(("corner",), 128), (("corner", "topview"), 128), (("corner",), 256)]


def measure(model: mujoco.MjModel, data: mujoco.MjData, cameras: tuple[str, ...], size: int, fast: bool,
            seconds: float) -> dict[str, float]:
    """Frames per wall second and per CPU second of one renderer configuration."""
    with CameraRenderer(model, cameras, size, size, fast=fast) as renderer:
        renderer.render(data)  # warm-up: textures uploaded, shaders compiled
        frames, wall, cpu = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - wall < seconds:
            renderer.render(data)
            frames += len(cameras)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"frames_per_s": round(frames / wall, 1), "frames_per_cpu_s": round(frames / cpu, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="pick-place-v3", help="Meta-World v3 task name")
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per case")
    args = parser.parse_args()
    bench = metaworld.MT1(args.task, seed=0)
    env = bench.train_classes[args.task]()
    env.set_task(bench.train_tasks[0])
    env.reset()
    rows = []
    print(f"{'cameras':>15} {'size':>7} {'fast':>5} {'frames/s':>9} {'per CPU s':>9}")
    for cameras, size in CASES:
        for fast in (True, False):
            figures = measure(env.model, env.data, cameras, size, fast, args.seconds)
            rows.append({"cameras": list(cameras), "size": size, "fast": fast, **figures})
            print(f"{'+'.join(cameras):>15} {size:>3}x{size:<3} {fast!s:>5} {figures['frames_per_s']:>9.1f} "
                  f"{figures['frames_per_cpu_s']:>9.1f}")
    env.close()
    save("render_fps", {"task": args.task, "mujoco": mujoco.__version__, "render_only": True,
                        "seconds_per_case": args.seconds, "runs": rows})


if __name__ == "__main__":
    main()
