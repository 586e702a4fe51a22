"""A camera calibration as CameraInfo carries it, without the message type.

The pipeline must run where no ROS is installed (the standalone CLI, the bag tool, the
benchmarks), so CameraInfo is turned into this plain record at the ROS edge and
everything after that works on numbers alone.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import math

from depth_anything_ros.geometry.intrinsics import Intrinsics

IDENTITY_3X3 = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
# A scaled image is rounded to whole pixels; its aspect ratio may be off by that much.
SIZE_TOLERANCE_PX = 1.0


@dataclass(frozen=True)
class CameraCalibration:
    """The fields of sensor_msgs/CameraInfo that describe the camera (not the header).

    ``roi`` is (x_offset, y_offset, width, height); width or height 0 means the full image.
    """

    width: int
    height: int
    k: tuple[float, ...]
    d: tuple[float, ...] = ()
    r: tuple[float, ...] = IDENTITY_3X3
    p: tuple[float, ...] = ()
    distortion_model: str = ""
    binning_x: int = 0
    binning_y: int = 0
    roi: tuple[int, int, int, int] = (0, 0, 0, 0)


def calibration_intrinsics(cal: CameraCalibration) -> Intrinsics:
    """Intrinsics of the images this calibration describes, from K.

    K, width and height are for the calibrated (full) resolution; a set ROI crops and
    binning divides it, as CameraInfo.msg specifies, so both are applied here. Raises
    ValueError for an uncalibrated (K[0] == 0) or unusable calibration.
    """
    k = [float(v) for v in cal.k]
    if k and k[0] == 0.0:
        raise ValueError("CameraInfo K[0] is 0: the camera is uncalibrated")
    if not all(math.isfinite(v) for v in k):
        raise ValueError(f"CameraInfo K has non-finite values: {k}")
    intr = Intrinsics.from_k(k, cal.width, cal.height)
    x_offset, y_offset, roi_width, roi_height = cal.roi
    if roi_width and roi_height:
        intr = Intrinsics(intr.fx, intr.fy, intr.cx - x_offset, intr.cy - y_offset,
                          int(roi_width), int(roi_height))
    bin_x, bin_y = max(1, int(cal.binning_x)), max(1, int(cal.binning_y))
    if bin_x > 1 or bin_y > 1:
        # Binned pixel u' covers full-resolution pixels [u'*b, u'*b + b - 1], centre
        # (u'+0.5)*b - 0.5, hence the same half-pixel shift as Intrinsics.scaled.
        intr = Intrinsics(intr.fx / bin_x, intr.fy / bin_y,
                          (intr.cx + 0.5) / bin_x - 0.5, (intr.cy + 0.5) / bin_y - 0.5,
                          intr.width // bin_x, intr.height // bin_y)
    return intr.validate()


def calibration_fits(intrinsics: Intrinsics, width: int, height: int) -> bool:
    """Whether a calibration describes an image of ``width`` x ``height``.

    The calibration is of ``intrinsics.width`` x ``intrinsics.height``; it describes the
    image when it has the same size, or is the same camera resized (binned, downscaled by
    the driver), i.e. the same aspect ratio up to rounding to whole pixels.

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


def describes(cal: CameraCalibration, intr: Intrinsics) -> bool:
    """Whether ``intr`` is this calibration's camera at ``intr``'s size.

    If so, its distortion and rectification may be republished with it (they act on
    normalised coordinates, which a plain resize leaves unchanged).
    """
    try:
        source = calibration_intrinsics(cal).scaled(intr.width, intr.height)
    except ValueError:
        return False
    return all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6) for a, b in (
        (source.fx, intr.fx), (source.fy, intr.fy), (source.cx, intr.cx), (source.cy, intr.cy)))


def scaled_calibration(cal: CameraCalibration, width: int, height: int) -> CameraCalibration:
    """Return the same calibration for the stream resized to ``width`` x ``height``.

    K and P scale like Intrinsics.scaled (focal lengths by the size ratio, the principal
    point about the pixel-centre convention, P's translation column with its focal
    length); D and R act on normalised coordinates and stay. A driver that publishes
    the full-size CameraInfo beside a downscaled image can then still be rectified.
    """
    if (cal.width, cal.height) == (width, height):
        return cal
    sx, sy = width / cal.width, height / cal.height
    k = list(cal.k)
    k[0], k[2] = k[0] * sx, (k[2] + 0.5) * sx - 0.5
    k[4], k[5] = k[4] * sy, (k[5] + 0.5) * sy - 0.5
    p = list(cal.p)
    if len(p) == 12:
        p[0], p[2], p[3] = p[0] * sx, (p[2] + 0.5) * sx - 0.5, p[3] * sx
        p[5], p[6], p[7] = p[5] * sy, (p[6] + 0.5) * sy - 0.5, p[7] * sy
    return dataclasses.replace(cal, width=int(width), height=int(height), k=tuple(k), p=tuple(p))
