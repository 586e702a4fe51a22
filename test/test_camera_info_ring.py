"""CameraInfoRing pairs images with the CameraInfo of the same stamp, else the newest."""

import pytest
from sensor_msgs.msg import CameraInfo

from depth_anything_ros.camera_info_ring import CameraInfoRing


def info(sec: int, fx: float, nanosec: int = 0) -> CameraInfo:
    msg = CameraInfo(width=80, height=60, k=[fx, 0.0, 40.0, 0.0, fx, 30.0, 0.0, 0.0, 1.0])
    msg.header.stamp.sec, msg.header.stamp.nanosec = sec, nanosec
    return msg


def stamp(sec: int, nanosec: int = 0):
    return info(sec, 1.0, nanosec).header.stamp


def test_exact_stamp_wins_over_the_latest():
    ring = CameraInfoRing(4)
    assert ring.match(stamp(1)) is None
    ring.add(info(1, 100.0))
    ring.add(info(2, 200.0))
    ring.add(info(3, 300.0, nanosec=5))
    exact = ring.match(stamp(2))
    assert exact.exact and exact.intrinsics.fx == 200.0
    assert exact.message.header.stamp.sec == 2
    # Same second, other nanoseconds: not the same stamp.
    latest = ring.match(stamp(3))
    assert not latest.exact and latest.intrinsics.fx == 300.0
    assert ring.match(stamp(3, 5)).exact


def test_invalid_calibration_is_refused_and_not_stored():
    ring = CameraInfoRing(4)
    ring.add(info(1, 100.0))
    with pytest.raises(ValueError, match="uncalibrated"):
        ring.add(info(2, 0.0))
    assert len(ring) == 1
    fallback = ring.match(stamp(2))
    assert not fallback.exact and fallback.intrinsics.fx == 100.0


def test_capacity_keeps_the_newest_and_a_resent_stamp_counts_as_newest():
    ring = CameraInfoRing(3)
    for sec in range(1, 6):
        ring.add(info(sec, 100.0 * sec))
    assert len(ring) == 3
    assert not ring.match(stamp(2)).exact
    assert ring.match(stamp(3)).exact
    ring.add(info(3, 333.0))  # re-sent with a new calibration
    assert ring.match(stamp(99)).intrinsics.fx == 333.0
    with pytest.raises(ValueError):
        CameraInfoRing(0)
