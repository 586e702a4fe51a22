"""Undistortion and rectification of raw camera images, as ROS image_proc's rectify node.

Depth Anything assumes a pinhole camera: a distorted input bends every back-projected
plane, by several percent of the range at the image edges. The pipeline therefore rectifies
the input image before inference, so the depth image and the cloud are in the rectified
camera (D = 0, K' = P[:3, :3], R = I), which is also the camera every ROS consumer of an
``image_rect`` topic assumes (image_geometry's PinholeCameraModel projects with P).

The maps are built with the calls image_geometry makes (vision_opencv, rolling):
``cv2.initUndistortRectifyMap`` for plumb_bob and rational_polynomial,
``cv2.fisheye.initUndistortRectifyMap`` for equidistant, both with CV_16SC2 fixed-point
maps, then ``cv2.remap`` with linear interpolation (image_proc's default) and a constant
border. Fixed-point maps are what image_geometry itself builds, so the output matches
image_proc bit for bit (CV_32FC1 maps differ from it by interpolation rounding); they also
remap a VGA bgr8 image about a fifth faster.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from depth_anything_ros.geometry.calibration import CameraCalibration, IDENTITY_3X3
from depth_anything_ros.geometry.intrinsics import Intrinsics

PLUMB_BOB = "plumb_bob"
RATIONAL_POLYNOMIAL = "rational_polynomial"
EQUIDISTANT = "equidistant"
SUPPORTED_MODELS = (PLUMB_BOB, RATIONAL_POLYNOMIAL, EQUIDISTANT)
# The coefficient counts cv2.initUndistortRectifyMap accepts. The fisheye call takes exactly
# 4, so a longer equidistant D (padded to 5 by some drivers) is cut to its first 4.
_PINHOLE_D_SIZES = (4, 5, 8, 12, 14)
_FISHEYE_D_SIZE = 4


class UnknownDistortionModel(ValueError):
    """A calibration whose lens model cannot be undone here.

    A separate type so that the caller can count it as its own rejection reason and go on
    with the unrectified image, instead of treating it like a malformed calibration.
    """

    def __init__(self, model: str) -> None:
        """Name the model and the supported ones, so the log says what to fix."""
        self.model = model
        super().__init__(f"distortion model {model!r} is not supported; supported models: "
                         f"{', '.join(SUPPORTED_MODELS)}")


def needs_rectification(cal: CameraCalibration) -> bool:
    """Whether images of this calibration must be remapped.

    Decided on D alone, as image_proc's rectify node does: with D empty or all zero it
    passes the image through untouched, even when R or P differ from identity and K, and
    whatever the distortion model says.
    """
    return any(float(value) != 0.0 for value in cal.d)


def rectification_maps(cal: CameraCalibration) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-point (CV_16SC2) maps from the rectified image into the raw one.

    Raises UnknownDistortionModel for a model other than SUPPORTED_MODELS and ValueError
    for a calibration that cannot be used (see ``_camera_matrices``).
    """
    model = cal.distortion_model
    if model not in SUPPORTED_MODELS:
        raise UnknownDistortionModel(model)
    k, r, p = _camera_matrices(cal)
    d = np.asarray(cal.d, np.float64)
    if not np.isfinite(d).all():
        raise ValueError(f"D has non-finite values: {d.tolist()}")
    size = (int(cal.width), int(cal.height))
    if model == EQUIDISTANT:
        if d.size < _FISHEYE_D_SIZE:
            raise ValueError(f"equidistant D needs {_FISHEYE_D_SIZE} coefficients, "
                             f"got {d.size}")
        return cv2.fisheye.initUndistortRectifyMap(k, d[:_FISHEYE_D_SIZE], r, p[:, :3], size,
                                                   cv2.CV_16SC2)
    if d.size not in _PINHOLE_D_SIZES:
        raise ValueError(f"{model} D must have one of {_PINHOLE_D_SIZES} coefficients, "
                         f"got {d.size}")
    return cv2.initUndistortRectifyMap(k, d, r, p[:, :3], size, cv2.CV_16SC2)


def rectified_calibration(cal: CameraCalibration) -> CameraCalibration:
    """Describe the rectified images: the camera of P's left 3x3, with no distortion.

    P is returned as used, i.e. K with a zero fourth column where it was absent or all zero.
    Raises ValueError as ``_camera_matrices`` does.
    """
    p = _camera_matrices(cal)[2]
    return CameraCalibration(
        width=cal.width, height=cal.height, k=tuple(p[:, :3].ravel().tolist()),
        d=(0.0,) * 5, r=IDENTITY_3X3, p=tuple(p.ravel().tolist()),
        distortion_model=PLUMB_BOB, binning_x=cal.binning_x, binning_y=cal.binning_y,
        roi=cal.roi)


def rectified_intrinsics(cal: CameraCalibration) -> Intrinsics:
    """Pinhole intrinsics of the rectified images, from P, for back-projecting their depth."""
    p = _camera_matrices(cal)[2]
    return Intrinsics(fx=float(p[0, 0]), fy=float(p[1, 1]), cx=float(p[0, 2]),
                      cy=float(p[1, 2]), width=int(cal.width), height=int(cal.height)).validate()


class Rectifier:
    """Rectifies the images of one camera, keeping the maps of the latest calibration.

    Building maps costs milliseconds and they are several megabytes at VGA, while a
    camera's calibration changes rarely, so only the latest one is kept; calibrations
    compare by value, so an equal one republished with every frame reuses the maps.
    ``builds`` counts the builds, for diagnostics.
    """

    def __init__(self) -> None:
        """Start without maps: the first frame builds them."""
        self._calibration: CameraCalibration | None = None
        self._maps: tuple[np.ndarray, np.ndarray] | None = None
        self.builds = 0

    def maps(self, cal: CameraCalibration) -> tuple[np.ndarray, np.ndarray]:
        """Return the maps of ``cal``, the cached ones when it equals the previous calibration."""
        if self._maps is None or cal != self._calibration:
            self._maps = rectification_maps(cal)
            self._calibration = cal
            self.builds += 1
        return self._maps

    def rectify(self, image: np.ndarray, cal: CameraCalibration) -> np.ndarray:
        """Return the rectified image, or ``image`` itself when ``cal`` has no distortion.

        ``image`` is (H, W) or (H, W, C) of any dtype cv2.remap takes (bgr8 camera frames;
        float32 depth for tests and tools), at the calibration's own size: a resized
        stream needs its calibration scaled to match first, so a mismatch is a ValueError
        rather than a silent guess. Interpolation is linear, as image_proc's default;
        pixels that sample outside the raw image are 0, or NaN for float images (again as
        image_geometry does), so a rectified depth image never invents range at its
        border. Raises UnknownDistortionModel and ValueError as ``rectification_maps``.
        """
        if not needs_rectification(cal):
            return image
        if image.shape[:2] != (cal.height, cal.width):
            raise ValueError(f"image is {image.shape[1]}x{image.shape[0]} but the calibration "
                             f"is for {cal.width}x{cal.height}; scale the calibration first")
        map1, map2 = self.maps(cal)
        border = (math.nan,) * 4 if np.issubdtype(image.dtype, np.floating) else (0,) * 4
        # Any numpy view works: a contiguous frame passes uncopied, a strided one (a flipped
        # rgb view) is copied once here rather than inside cv2, where it costs the same.
        return cv2.remap(np.ascontiguousarray(image), map1, map2, cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=border)


def _camera_matrices(cal: CameraCalibration) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """K (3x3), R (3x3) and P (3x4) as float64, validated and with ROS's empty defaults.

    An absent or all-zero R means identity and an absent or all-zero P means K with a
    zero fourth column, which is what OpenCV assumes for an empty new camera matrix;
    image_geometry would pass the zeros to OpenCV and map every pixel to one point.

    Binning and a region of interest are refused (ValueError): image_geometry adjusts
    K and P for them, but its rectified ROI is unfinished (a todo in vision_opencv), so
    the rectified camera such images belong to is not well defined, and drivers that
    bin or crop on the sensor rarely also publish a distortion. An uncalibrated K
    (K[0] == 0, which image_proc refuses too), a non-positive focal length and non-finite
    values would give maps that smear the image, so they are ValueError as well.
    """
    _check_full_resolution(cal)
    k = _matrix("K", cal.k, (3, 3))
    Intrinsics.from_k(cal.k, cal.width, cal.height)  # raises for fx, fy <= 0 or a bad size
    r = _matrix("R", cal.r, (3, 3)) if any(cal.r) else np.eye(3)
    p = _matrix("P", cal.p, (3, 4)) if any(cal.p) else np.hstack([k, np.zeros((3, 1))])
    return k, r, p


def _check_full_resolution(cal: CameraCalibration) -> None:
    """Raise ValueError for binning or an ROI smaller than the image (see _camera_matrices)."""
    if max(int(cal.binning_x), int(cal.binning_y)) > 1:
        raise ValueError(f"binning {cal.binning_x}x{cal.binning_y} is not supported "
                         "for rectification (only 0 or 1)")
    if tuple(cal.roi) not in ((0, 0, 0, 0), (0, 0, cal.width, cal.height)):
        raise ValueError(f"an ROI {tuple(cal.roi)} (x, y, width, height) is not supported "
                         "for rectification (only the full image)")


def _matrix(name: str, values: tuple[float, ...], shape: tuple[int, int]) -> np.ndarray:
    """``values`` as a row-major float64 matrix, or ValueError naming the field."""
    array = np.asarray(values, np.float64)
    if array.size != shape[0] * shape[1]:
        raise ValueError(f"{name} must have {shape[0] * shape[1]} values, got {array.size}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} has non-finite values: {array.tolist()}")
    return array.reshape(shape)
