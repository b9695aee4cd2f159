"""The on-disk layout of demonstrations: robomimic / LIBERO HDF5, one file per task.

    <task>.hdf5  (or <task>_demo.hdf5, as official LIBERO files are named)
      data/                       attrs: problem_info (JSON with "language_instruction"),
                                         env_args (JSON), total (steps in all demos), and ours:
                                         task, suite, instruction, task_index, collection (JSON),
                                         packages (JSON), macros_image_convention ("opengl" | "opencv")
        demo_<i>/                 attrs: num_samples (T)
          actions                 (T, Da) float32/float64
          obs/<key>               (T, ...) low-dimensional: float; images: (T, H, W, 3) uint8
          rewards                 (T,) float
          dones                   (T,) uint8 / bool

Image keys end in ``_rgb`` (``agentview_rgb``, ``eye_in_hand_rgb``, ``corner_rgb``); in a batch,
image key ``<camera>_rgb`` becomes ``obs.rgb.<camera>`` as (3, H, W). Everything else under
``obs/`` is low-dimensional; the dataset config chooses which of them form ``obs.state``.
Images stored in the "opengl" convention (upside down, as official LIBERO files are) are
flipped upright when read.
"""

from __future__ import annotations

import json
from typing import Any

DATA = "data"
DEMO_PREFIX = "demo_"
ACTIONS = "actions"
OBS = "obs"
REWARDS = "rewards"
DONES = "dones"
RGB_SUFFIX = "_rgb"
NUM_SAMPLES = "num_samples"
PROBLEM_INFO = "problem_info"
IMAGE_CONVENTION = "macros_image_convention"
FORMAT_VERSION = 1


def image_key(camera: str) -> str:
    """``agentview`` -> ``agentview_rgb``, the obs key of a camera's images (inverse of `camera_of`)."""
    return f"{camera}{RGB_SUFFIX}"


def camera_of(obs_key: str) -> str | None:
    """``corner_rgb`` -> ``corner``; None for low-dimensional keys."""
    return obs_key[: -len(RGB_SUFFIX)] if obs_key.endswith(RGB_SUFFIX) else None


def demo_name(index: int) -> str:
    return f"{DEMO_PREFIX}{index}"


def demo_index(name: str) -> int:
    """``demo_12`` -> 12 (demos are ordered by number, not by name)."""
    return int(name[len(DEMO_PREFIX):])


def problem_info(instruction: str, problem_name: str) -> str:
    """The JSON attribute LIBERO keeps its language instruction in."""
    return json.dumps({"problem_name": problem_name, "language_instruction": instruction})


def instruction_from_attrs(attrs: Any) -> str | None:
    """Our ``instruction`` attribute, else LIBERO's ``problem_info["language_instruction"]``."""
    if "instruction" in attrs:
        return str(attrs["instruction"])
    if PROBLEM_INFO in attrs:
        info = json.loads(attrs[PROBLEM_INFO])
        text = info.get("language_instruction")
        return " ".join(text) if isinstance(text, list) else text
    return None
