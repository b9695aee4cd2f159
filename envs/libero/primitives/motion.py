"""What every LIBERO primitive shares: the hand as the observation window shows it, and actions.

Actions are OSC_POSE deltas: (7,) = xyz move (units; 1 unit ~ 0.0125 m per step), rotation (world-frame
axis-angle, 1 unit ~ 0.5 rad per step), gripper (+1 closes, -1 opens).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

GAIN = 10.0  # action units per metre of position error
ROTATION_GAIN = 1.5  # rotation action units per radian of orientation error
OPEN_GAP = 0.072  # finger gap (m) above which the gripper counts as open (fully open ~0.078)
CLOSING_SPEED = 2e-4  # shrink of the finger gap (m per step) that says the fingers are still closing
# Gripper pointing down, fingers closing along world y: the Panda's pose at reset (yaw 0).
DOWN = Rotation.from_matrix(np.diag([1.0, -1.0, -1.0]))


@dataclass(frozen=True)
class Hand:
    """The gripper over an observation window: state (To, 8) = ee_pos (3), ee_ori axis-angle (3),
    finger joint positions (2)."""

    eef: np.ndarray  # (3,) grip site, world frame (m)
    ori: np.ndarray  # (3,) axis-angle of the hand
    gap: float  # finger gap now (m)
    closing: bool  # the gap shrank over the window: the fingers are still closing

    @classmethod
    def from_state(cls, state: np.ndarray) -> "Hand":
        state = np.asarray(state, dtype=np.float64)
        gaps = state[:, 6] - state[:, 7]
        closing = len(gaps) > 1 and gaps[-1] < gaps[-2] - CLOSING_SPEED
        return cls(state[-1, :3], state[-1, 3:6], float(gaps[-1]), bool(closing))

    @property
    def is_open(self) -> bool:
        return self.gap >= OPEN_GAP


def orientation_error(ori: np.ndarray, target: Rotation) -> np.ndarray:
    """(3,) world-frame axis-angle (rad) turning the hand from axis-angle `ori` to `target`."""
    return (target * Rotation.from_rotvec(np.asarray(ori, dtype=np.float64)).inv()).as_rotvec()


def rotation_action(ori: np.ndarray, yaw: float | None) -> np.ndarray:
    """(3,) rotation action turning the hand from axis-angle `ori` to pointing down at `yaw`
    (world-frame axis-angle error, as OSC_POSE expects); yaw None keeps the hand's yaw and only
    brings it back to pointing down (after a drawer or door was taken with the hand level)."""
    # Always the same turn (not the nearer of yaw and yaw - pi, which the symmetric fingers would
    # allow): the other way round, the wrist reaches its joint limit at the far left of the table.
    target = Rotation.from_euler("z", hand_yaw(ori) if yaw is None else yaw) * DOWN
    return ROTATION_GAIN * orientation_error(ori, target)


def tilt(ori: np.ndarray) -> float:
    """Angle (rad) between the hand's pointing direction and straight down."""
    pointing = Rotation.from_rotvec(np.asarray(ori, dtype=np.float64)).apply([0.0, 0.0, 1.0])
    return float(np.arccos(np.clip(-pointing[2], -1.0, 1.0)))


def hand_yaw(ori: np.ndarray) -> float:
    """Yaw (rad) of the hand about world z relative to the reset pose, for a hand pointing down."""
    relative = Rotation.from_rotvec(np.asarray(ori, dtype=np.float64)) * DOWN.inv()
    return float(relative.as_euler("zyx")[0])


def yaw_for_closing_axis(axis: np.ndarray) -> float:
    """Yaw (rad, within [-pi/2, pi/2]) of a hand pointing down whose fingers close along horizontal
    `axis` (2,) (at yaw 0 they close along world y; the fingers are symmetric, so yaw and yaw + pi agree)."""
    yaw = float(np.arctan2(-axis[0], axis[1]))
    return (yaw + np.pi / 2) % np.pi - np.pi / 2


def at_least(move: np.ndarray, norm: float) -> np.ndarray:
    """`move` scaled up to `norm` if shorter (a direction is kept, a zero move stays zero)."""
    length = np.linalg.norm(move)
    return move * (norm / length) if 0 < length < norm else move


def action(move: np.ndarray, rotate: np.ndarray, close: bool) -> np.ndarray:
    """(7,) action: move (3,) and rotate (3,) clipped to [-1, 1], gripper closed or open."""
    return np.r_[np.clip(move, -1.0, 1.0), np.clip(rotate, -1.0, 1.0), 1.0 if close else -1.0]


HOLD_STILL = np.array([0, 0, 0, 0, 0, 0, -1], dtype=np.float64)  # no motion, gripper open


TILTED = 0.35  # tilt (rad) beyond which a hand pointing down is first brought back upright


def upright_recovery(hand: Hand) -> np.ndarray | None:
    """After a handle was taken with the hand level: let go, back away from what the fingertips point
    at and turn the hand down again. None when the hand already points down (within `TILTED`)."""
    if tilt(hand.ori) < TILTED:
        return None
    pointing = Rotation.from_rotvec(np.asarray(hand.ori, dtype=np.float64)).apply([0.0, 0.0, 1.0])
    back = -np.r_[pointing[:2], 0.0]
    move = 0.5 * back / max(np.linalg.norm(back), 1e-9) + np.array([0.0, 0.0, 0.2])
    if not hand.is_open:
        move = np.zeros(3)  # open in place first: the fingers may still hold the handle
    return action(move, rotation_action(hand.ori, None) if hand.is_open else np.zeros(3), close=False)
