"""Which image stamps going backwards to skip, and which to take as the source restarting.

A frame stamped before the last one the node accepted is a stale frame: a second
publisher on the topic, a relay that reorders, a driver bug. Processing it would publish
depth out of order, which breaks consumers that integrate over time (odometry, voxel
layers with decay), so it is skipped and counted.

The stamps of a whole stream can also legitimately jump back: a rosbag played with
``--loop``, a simulator reset, a camera driver restarted on sim time. Skipping then would
stall the node until the clock catches up with the old stamps, possibly forever. A jump
back of more than ``RESTART_AFTER_S``, or ``RESTART_AFTER_FRAMES`` older frames in a
row, is taken as such a restart: the frame is accepted and becomes the new reference.
Out-of-order delivery is short (milliseconds) and isolated, so it stays on the skip side
of both limits.
"""

from __future__ import annotations

import enum
from typing import Optional

RESTART_AFTER_S = 1.0
RESTART_AFTER_FRAMES = 5


class StampVerdict(enum.Enum):
    ACCEPT = "accept"
    BACKWARDS = "backwards"   # skip this frame
    RESTART = "restart"       # accept it; the stream started over


class StampOrder:
    """Tracks the newest accepted stamp of one image stream.

    Unstamped images (stamp 0) carry no order and are always accepted without moving
    the reference.
    """

    def __init__(self, restart_after_s: float = RESTART_AFTER_S,
                 restart_after_frames: int = RESTART_AFTER_FRAMES) -> None:
        if restart_after_s <= 0 or restart_after_frames < 1:
            raise ValueError("restart limits must be positive")
        self._restart_after_ns = int(restart_after_s * 1e9)
        self._restart_after_frames = restart_after_frames
        self._last_ns: Optional[int] = None
        self._backwards_in_row = 0

    def check(self, now_ns: int) -> tuple[StampVerdict, float]:
        """Return the verdict for an image stamped ``now_ns`` (nanoseconds).

        ``now_ns`` is a header's sec * 1e9 + nanosec. Also returns how many seconds it lies
        before the newest accepted stamp (0 when it does not).
        """
        if now_ns == 0:
            return StampVerdict.ACCEPT, 0.0
        last_ns = self._last_ns
        back_ns = 0 if last_ns is None else last_ns - now_ns
        if back_ns <= 0:
            self._last_ns = now_ns
            self._backwards_in_row = 0
            return StampVerdict.ACCEPT, 0.0
        self._backwards_in_row += 1
        if back_ns > self._restart_after_ns or self._backwards_in_row >= self._restart_after_frames:
            self._last_ns = now_ns
            self._backwards_in_row = 0
            return StampVerdict.RESTART, back_ns * 1e-9
        return StampVerdict.BACKWARDS, back_ns * 1e-9
