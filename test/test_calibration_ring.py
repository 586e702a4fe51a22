"""CalibrationRing pairs images with the calibration of the same stamp, else the newest.

calibration_fits tells a resized camera from another one. No ROS needed.
"""

import math

from hypothesis import assume, given, settings
from hypothesis import strategies as st
import pytest

from depth_anything_ros.geometry.calibration import calibration_fits, CameraCalibration
from depth_anything_ros.geometry.intrinsics import Intrinsics
from depth_anything_ros.pipeline.calibration_ring import CalibrationRing


def stamp(sec: int, nanosec: int = 0) -> int:
    return sec * 1_000_000_000 + nanosec


def info(sec: int, fx: float, nanosec: int = 0) -> tuple[CameraCalibration, int]:
    return (CameraCalibration(80, 60, k=(fx, 0.0, 40.0, 0.0, fx, 30.0, 0.0, 0.0, 1.0)),
            stamp(sec, nanosec))


def test_exact_stamp_wins_over_the_latest():
    ring = CalibrationRing(4)
    assert ring.match(stamp(1)) is None
    ring.add(*info(1, 100.0))
    ring.add(*info(2, 200.0))
    ring.add(*info(3, 300.0, nanosec=5))
    exact = ring.match(stamp(2))
    assert exact.exact and exact.intrinsics.fx == 200.0
    assert exact.calibration.k[0] == 200.0
    # Same second, other nanoseconds: not the same stamp.
    latest = ring.match(stamp(3))
    assert not latest.exact and latest.intrinsics.fx == 300.0
    assert ring.match(stamp(3, 5)).exact


def test_invalid_calibration_is_refused_and_not_stored():
    ring = CalibrationRing(4)
    ring.add(*info(1, 100.0))
    with pytest.raises(ValueError, match="uncalibrated"):
        ring.add(*info(2, 0.0))
    assert len(ring) == 1
    fallback = ring.match(stamp(2))
    assert not fallback.exact and fallback.intrinsics.fx == 100.0


def test_capacity_keeps_the_newest_and_a_resent_stamp_counts_as_newest():
    ring = CalibrationRing(3)
    for sec in range(1, 6):
        ring.add(*info(sec, 100.0 * sec))
    assert len(ring) == 3
    assert not ring.match(stamp(2)).exact
    assert ring.match(stamp(3)).exact
    ring.add(*info(3, 333.0))  # re-sent with a new calibration
    assert ring.match(stamp(99)).intrinsics.fx == 333.0
    with pytest.raises(ValueError):
        CalibrationRing(0)


def intrinsics(width: int, height: int) -> Intrinsics:
    return Intrinsics(0.8 * width, 0.8 * width, width / 2, height / 2, width, height)


@pytest.mark.parametrize("calibrated, image", [
    ((640, 480), (640, 480)),
    ((640, 480), (320, 240)),      # driver downscale
    ((1280, 720), (640, 360)),     # 2x2 binning
    ((1281, 721), (640, 360)),     # binning of an odd size floors
    ((1920, 1080), (80, 45)),
    ((213, 120), (640, 360)),      # a calibration made on a rounded small size
    ((480, 640), (240, 320)),      # portrait
])
def test_same_size_or_scaled_calibrations_fit(calibrated, image):
    assert calibration_fits(intrinsics(*calibrated), *image)


@pytest.mark.parametrize("calibrated, image", [
    ((640, 480), (640, 360)),      # 4:3 calibration, 16:9 image
    ((848, 480), (640, 480)),      # the depth sensor's CameraInfo on the colour image
    ((640, 480), (480, 640)),      # rotated
    ((640, 480), (80, 62)),
])
def test_calibrations_of_another_shape_do_not_fit(calibrated, image):
    assert not calibration_fits(intrinsics(*calibrated), *image)


@settings(max_examples=300, deadline=None)
@given(width=st.integers(1, 4000), height=st.integers(1, 4000),
       scale=st.floats(0.01, 20.0), floor=st.booleans())
def test_every_resize_of_a_calibration_fits(width, height, scale, floor):
    """A resized image of the calibrated camera is accepted, whatever the scale and rounding.

    Rounding is round for a resize, floor for binning.
    """
    rounding = math.floor if floor else round
    scaled_w, scaled_h = rounding(width * scale), rounding(height * scale)
    assume(scaled_w >= 1 and scaled_h >= 1)
    assert calibration_fits(intrinsics(width, height), scaled_w, scaled_h)
