"""Recent calibrations by stamp, so each image gets the calibration sent with it.

Image and CameraInfo arrive on separate subscriptions in either order, and
message_filters is not available. Drivers publish both with the same stamp, so an
exact stamp match is the right pairing; when it is missing (dropped by best-effort
QoS, or a driver that stamps them differently) the most recent valid calibration is
the best remaining guess, since intrinsics rarely change at runtime.
"""

from __future__ import annotations

from collections import OrderedDict
import threading
from typing import NamedTuple, Optional

from depth_anything_ros.geometry.calibration import calibration_intrinsics, CameraCalibration
from depth_anything_ros.geometry.intrinsics import Intrinsics


class CalibrationMatch(NamedTuple):
    intrinsics: Intrinsics
    calibration: CameraCalibration   # kept as the template for the republished CameraInfo
    exact: bool                      # stamp matched the image's


class CalibrationRing:
    """The last ``capacity`` valid calibrations; ``add`` validates, ``match`` pairs.

    Stamps are nanoseconds (sec * 1e9 + nanosec). Written by the thread that receives
    CameraInfo, read by the one that finishes frames, hence the lock.
    """

    def __init__(self, capacity: int = 16) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._capacity = capacity
        self._lock = threading.Lock()
        self._by_stamp: OrderedDict[int, tuple[Intrinsics, CameraCalibration]] = OrderedDict()

    def add(self, calibration: CameraCalibration, stamp_ns: int) -> Intrinsics:
        """Store a usable calibration; raises ValueError (nothing stored) if it is not."""
        intrinsics = calibration_intrinsics(calibration)
        with self._lock:
            self._by_stamp.pop(stamp_ns, None)
            self._by_stamp[stamp_ns] = (intrinsics, calibration)
            while len(self._by_stamp) > self._capacity:
                self._by_stamp.popitem(last=False)
        return intrinsics

    def match(self, stamp_ns: int) -> Optional[CalibrationMatch]:
        """Return the calibration stamped ``stamp_ns``, else the latest one received, else None."""
        with self._lock:
            entry = self._by_stamp.get(stamp_ns)
            if entry is not None:
                return CalibrationMatch(entry[0], entry[1], True)
            if not self._by_stamp:
                return None
            intrinsics, calibration = next(reversed(self._by_stamp.values()))
            return CalibrationMatch(intrinsics, calibration, False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_stamp)
