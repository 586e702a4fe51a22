"""Recent CameraInfo messages by stamp, so each image gets the calibration sent with it.

Image and CameraInfo arrive on separate subscriptions in either order, and
message_filters is not available. Drivers publish both with the same stamp, so an
exact stamp match is the right pairing; when it is missing (dropped by best-effort
QoS, or a driver that stamps them differently) the most recent valid calibration is
the best remaining guess, since intrinsics rarely change at runtime.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, NamedTuple, Optional

from builtin_interfaces.msg import Time as TimeMsg
from sensor_msgs.msg import CameraInfo

from depth_anything_ros.geometry import Intrinsics
from depth_anything_ros.ros_codec import camera_info_to_intrinsics


class CalibrationMatch(NamedTuple):
    intrinsics: Intrinsics
    message: CameraInfo   # kept as the template for the republished CameraInfo
    exact: bool           # stamp matched the image's


# A scaled image is rounded to whole pixels; its aspect ratio may be off by that much.
SIZE_TOLERANCE_PX = 1.0


def calibration_fits(intrinsics: Intrinsics, width: int, height: int) -> bool:
    """Whether a calibration of ``intrinsics.width`` x ``intrinsics.height`` describes an
    image of ``width`` x ``height``: the same size, or the same camera resized (binned,
    downscaled by the driver), i.e. the same aspect ratio up to rounding to whole pixels.

    A calibration of another shape belongs to another camera or stream (a wrong remap,
    the depth sensor's CameraInfo on the colour image) and scaling it would bend every
    point of the cloud, so the caller must not use it.
    """
    cal_w, cal_h = intrinsics.width, intrinsics.height
    if (cal_w, cal_h) == (width, height):
        return True
    # Predict the image's shorter side from its longer one: the longer side's rounding
    # error then shrinks by the aspect ratio instead of growing by it.
    if width >= height:
        return abs(cal_h * width / cal_w - height) <= SIZE_TOLERANCE_PX
    return abs(cal_w * height / cal_h - width) <= SIZE_TOLERANCE_PX


def _stamp_key(stamp: TimeMsg) -> tuple[int, int]:
    return (int(stamp.sec), int(stamp.nanosec))


class CameraInfoRing:
    """The last ``capacity`` valid CameraInfo messages; ``add`` validates, ``match`` pairs."""

    def __init__(self, capacity: int = 16,
                 to_intrinsics: Callable[[CameraInfo], Intrinsics] = camera_info_to_intrinsics
                 ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._capacity = capacity
        self._to_intrinsics = to_intrinsics
        self._lock = threading.Lock()
        self._by_stamp: OrderedDict[tuple[int, int], tuple[Intrinsics, CameraInfo]] = OrderedDict()

    def add(self, msg: CameraInfo) -> Intrinsics:
        """Store ``msg`` if it is a usable calibration; raises ValueError (not stored) if not."""
        intrinsics = self._to_intrinsics(msg)
        key = _stamp_key(msg.header.stamp)
        with self._lock:
            self._by_stamp.pop(key, None)
            self._by_stamp[key] = (intrinsics, msg)
            while len(self._by_stamp) > self._capacity:
                self._by_stamp.popitem(last=False)
        return intrinsics

    def match(self, stamp: TimeMsg) -> Optional[CalibrationMatch]:
        """The calibration stamped ``stamp``, else the latest one received, else None."""
        with self._lock:
            entry = self._by_stamp.get(_stamp_key(stamp))
            if entry is not None:
                return CalibrationMatch(entry[0], entry[1], True)
            if not self._by_stamp:
                return None
            intrinsics, msg = next(reversed(self._by_stamp.values()))
            return CalibrationMatch(intrinsics, msg, False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_stamp)
