"""Putting an object in through a hinged door (the microwave): level and sideways, the hand outside.

The microwave's oven is 14.4 cm tall inside and the yellow and white mug 10.3 cm; taken by its rim from
above, the hand (~10 cm from the grip site to the wrist) would have to go in too, and the mug ended on
the oven's roof. An object put In a region behind a hinged door is therefore held where the hand stays
outside (`grasps.THROUGH_DOOR_GRASPS`: a mug by its handle, which points out of the opening), lifted
just over the oven's floor, lined up in front of the opening, slid in level, put down and let go. What
still stands out of the opening (the handle) is pushed in by the door when it is closed next.

Which side the opening faces, and where its middle is, are read off the door (`Opening.of`): shut, the
door's handle moves out of the opening's face as the door starts to open.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.libero.primitives.motion import GAIN, action, at_least
from envs.libero.privileged import Mechanism

ENTRY_CLEARANCE = 0.035  # height (m) of the object's bottom over the region's floor while it goes in: the
# oven's floor is 8 mm above the region's, and a mug then clears the oven's ceiling by 1.4 cm
ENTRY_DEPTH = 0.02  # how far (m) behind the region's face the object's position is put down: deeper, the
# palm of the hand holding a mug's handle meets the front edge of the oven's roof
LINE_UP_OUTSIDE = 0.05  # the object lines up with its position this far (m) in front of the face: further
# out, the 20-cm-wide hand meets a door opened less than a right angle
DOOR_BEYOND_HANDLE = 0.025  # the door's free edge lies this far (m) beyond its handle
ON_LINE = 0.015  # lateral and height error (m) within which the object goes in
AT_TARGET = 0.012  # distance (m) from the put-down point below which the object is lowered
MIN_MOVE = 0.25  # smallest move (action units) while going in: below it the arm stalls short of the target


@dataclass(frozen=True)
class Opening:
    """The face a hinged door closes over, horizontal, world frame: `outward` (2,) its unit normal out of
    the container, snapped to the nearer of +-x, +-y (LIBERO's furniture stands square to the table);
    `middle` (2,) halfway between the hinge and the free edge of the shut door, where an object goes in (the
    microwave's oven sits beside its control panel, off the centre of the heating region's box)."""

    outward: np.ndarray
    middle: np.ndarray

    @classmethod
    def of(cls, door: Mechanism) -> "Opening":
        """The door turns back to shut by its joint position (0: shut), in the sense that moves its handle
        against its opening direction; turned back with it, the handle's opening direction is the face's
        outward normal."""
        arm, opening = (door.handle - door.anchor)[:2], door.opening[:2]
        closing_sense = np.sign(arm[1] * opening[0] - arm[0] * opening[1])  # +1: counter-clockwise from above
        turn = closing_sense * abs(door.joint)
        shut = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
        outward = shut @ opening
        axis = int(np.argmax(np.abs(outward)))
        snapped = np.zeros(2)
        snapped[axis] = np.sign(outward[axis])
        along = np.array([-snapped[1], snapped[0]])  # the shut door's line
        reach = (shut @ arm) @ along
        return cls(snapped, door.anchor[:2] + (reach + np.sign(reach) * DOOR_BEYOND_HANDLE) / 2 * along)


def carry_through_door(position: np.ndarray, bottom: float, region: tuple[np.ndarray, np.ndarray],
                       opening: Opening, release: float, resting: bool, rotate: np.ndarray
                       ) -> np.ndarray:
    """(7,) action for a held object at `position` (3,) with its lowest point at `bottom` (m), to go into
    `region` (low (3,), high (3,)) through `opening`: up to the entry height, to the line-up point in front
    of the opening's middle, in level to `ENTRY_DEPTH` behind the region's face, down until its bottom is
    at the height `release` (m) or it rests (`resting`: no longer sinking), and let go. The hand moves by the
    object's errors (it hangs where it is held)."""
    low, high = region
    outward, middle = opening.outward, opening.middle
    face = max(low[:2] @ outward, high[:2] @ outward)  # the region's face: its coordinate along `outward`
    target = middle + (face - ENTRY_DEPTH - middle @ outward) * outward
    line_up = middle + (face + LINE_UP_OUTSIDE - middle @ outward) * outward
    entry = low[2] + ENTRY_CLEARANCE
    outside = position[:2] @ outward - face
    off_line = position[:2] - target - ((position[:2] - target) @ outward) * outward
    to_target = float(np.linalg.norm(target - position[:2]))
    if outside > 0 and (abs(bottom - entry) > ON_LINE or np.linalg.norm(off_line) > ON_LINE
                        or outside > LINE_UP_OUTSIDE + 2 * ON_LINE):
        xy_scale = 0.2 if bottom < entry - ON_LINE else 1.0  # off the table first, then to the line-up point
        return action(GAIN * np.r_[xy_scale * (line_up - position[:2]), entry - bottom], rotate, close=True)
    lowering = bottom < entry - ON_LINE and to_target < 2 * AT_TARGET
    if to_target > AT_TARGET and not lowering:  # in, level; small moves stall the arm short of the target
        return action(at_least(GAIN * np.r_[target - position[:2], entry - bottom], MIN_MOVE), rotate, close=True)
    if bottom > release + 0.005 and not resting:
        return action(GAIN * np.r_[target - position[:2], release - bottom], rotate, close=True)
    return action(np.zeros(3), rotate, close=False)
