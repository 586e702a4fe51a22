"""Sparse metric references for scale alignment: true depths at some output pixels.

A depth network's output has no reliable metric scale, so a sensor that does (a registered
depth image, a LiDAR cloud) or a known fact about the scene (a flat floor at a known camera
height) supplies true depths z at some pixels of the network's output, and the alignment
fits the output to them. Everything here turns one such source into the same form,
``ReferenceSamples``: output-pixel indices and the depth z there, in metres, in the camera's
REP 103 optical frame (x right, y down, z forward), with pixel (row r, col c) centred at
u = c, v = r as in rays.py.

A dense reference is subsampled evenly to at most ``MAX_SAMPLES``: the fit's cost grows with
the number of samples, and a few thousand already pin down a scale and a shift far more
tightly than the network's own errors allow.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Optional, Sequence

import numpy as np

from depth_anything_ros.geometry.intrinsics import Intrinsics

REFERENCE_ASPECT = "reference_aspect"
REFERENCE_EMPTY = "reference_empty"
REFERENCE_NON_FINITE = "reference_non_finite"
REFERENCE_EXTRINSIC = "reference_extrinsic_invalid"

# Enough samples that the fit's statistics are set by the network's errors, not by how many
# samples there are, while scoring them stays well under a millisecond.
MAX_SAMPLES = 4000
# Nearest point a cloud may contribute, in metres of z: nearer points are usually the robot
# itself or the sensor's housing, and 1/z explodes there.
MIN_POINT_DEPTH = 0.05
# Smallest angle between a pixel's ray and the floor for the floor to be a reference there.
# The distance along the ray is h / sin(angle), so an error of d(pitch) radians changes the
# depth by cot(angle) * d(pitch): at 5 degrees a 0.5 degree mounting error is already 10 %,
# at 3 degrees 17 %, which a fit would read as scale. Below 5 degrees the floor is also more
# than 11 camera heights away, where real floors are seldom visible, flat or unobstructed.
GROUND_MIN_ANGLE_DEG = 5.0
# How far a quaternion's length may be from 1: rounding in a hand-written or printed pose
# stays well inside, a quaternion typed wrong does not.
_QUATERNION_TOLERANCE = 1e-3
# Bits of a positive float32 read as uint32 sort like the floats; used to sort by pixel and
# then by depth in one integer sort.
_DEPTH_BITS = 32


class UnusableReference(ValueError):
    """Say why a reference gives no samples; ``kind`` is one of the REFERENCE_* constants.

    The kind lets a caller count and report failures by cause (diagnostics, a throttled
    warning per kind) without parsing messages.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class ReferenceSamples:
    """True depths ``depth`` (float32 metres, z) at output pixels (``rows``, ``cols``)."""

    rows: np.ndarray
    cols: np.ndarray
    depth: np.ndarray

    def __len__(self) -> int:
        return int(self.depth.size)


def _evenly(count: int, limit: int) -> Optional[np.ndarray]:
    """Return ``limit`` indices spread evenly over range(count), or None when all fit.

    Even rather than random picks make the same reference give the same fit every time, so
    a frame's result can be reproduced and the temporal filter sees no sampling noise.
    """
    if count <= limit:
        return None
    return (np.arange(limit, dtype=np.int64) * count) // limit


def _aspect_matches(h: int, w: int, height: int, width: int) -> bool:
    """Tell whether a w x h image can be the output's width x height view, up to rounding.

    Rounding each side of either image to whole pixels changes its aspect ratio by up to
    half a pixel per side; one pixel per image covers that with margin, and still refuses
    any real crop or a different camera (480x480 against 480x640 differs by 25 %).
    """
    tolerance = 1.0 / min(h, w) + 1.0 / min(height, width)
    return abs((w / h) / (width / height) - 1.0) <= tolerance


def _output_index(index: np.ndarray, size: int, output_size: int) -> np.ndarray:
    """Map pixel indices along one side to the nearest output pixels, centre to centre.

    Pixel centres sit half a pixel from the image's edge at every resolution, so the centre
    of reference pixel i lies at (i + 0.5) * output/reference - 0.5 in output pixels; scaling
    i alone would shift a half-resolution reference by half a pixel.
    """
    position = (index + 0.5) * (output_size / size) - 0.5
    return np.clip(np.floor(position + 0.5), 0, output_size - 1).astype(np.intp)


def depth_image_samples(depth: np.ndarray, height: int, width: int) -> ReferenceSamples:
    """Sample a depth image that sees what the output sees, at any resolution.

    ``depth`` is (h, w) metres registered to the camera (same optical centre and field of
    view: what depth_image_proc's register node or a sensor's own alignment produces);
    0, negative, NaN or infinite pixels hold no data. Each valid pixel becomes the sample of
    the output pixel (of ``height`` x ``width``) nearest its centre.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2 or depth.size == 0:
        raise UnusableReference(REFERENCE_EMPTY, f"The reference depth image has shape "
                                f"{depth.shape}; expected a non-empty 2-D (height, width) "
                                "image.")
    h, w = depth.shape
    if not _aspect_matches(h, w, height, width):
        raise UnusableReference(
            REFERENCE_ASPECT, f"The reference depth image is {w}x{h} (aspect {w / h:.3f}) but "
            f"the depth output is {width}x{height} (aspect {width / height:.3f}); the "
            "reference must be registered to this camera and cover the same field of view, "
            "at any resolution with the same aspect ratio.")
    rows, cols, values = _valid_pixels(depth)
    return ReferenceSamples(rows=_output_index(rows, h, height),
                            cols=_output_index(cols, w, width), depth=values)


def _valid_pixels(depth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return rows, cols and depths (float32) of at most MAX_SAMPLES valid pixels, evenly.

    A dense image (a depth camera's) is first looked at on a grid of about 4 * MAX_SAMPLES
    pixels, which costs a sixteenth of a full scan at VGA; only when that grid holds fewer
    than MAX_SAMPLES valid pixels (a sparse image, e.g. projected LiDAR, whose pattern a grid
    could miss) is every pixel scanned.
    """
    h, w = depth.shape
    step = max(1, int(math.sqrt(depth.size / (4 * MAX_SAMPLES))))
    grid = depth[::step, ::step]
    index = _valid_index(grid)
    if index.size < MAX_SAMPLES and step > 1:
        step, grid = 1, depth
        index = _valid_index(grid)
    if index.size == 0:
        raise UnusableReference(
            REFERENCE_EMPTY, f"The reference depth image ({w}x{h}) has no valid pixel; "
            "expected some depths > 0 in metres (0, NaN and infinity mean no data).")
    pick = _evenly(index.size, MAX_SAMPLES)
    if pick is not None:
        index = index[pick]
    rows, cols = np.divmod(index, grid.shape[1])
    values = grid[rows, cols].astype(np.float32)
    return rows * step, cols * step, values


def _valid_index(depth: np.ndarray) -> np.ndarray:
    """Return the flat indices of the pixels that hold a depth."""
    # NaN fails both comparisons, so it drops out without a separate isnan.
    valid = depth > 0
    valid &= depth < np.inf
    return np.flatnonzero(valid)


def pose_from_extrinsic(values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Return (R, t) with p_cam = R @ p_ref + t from [x, y, z, qx, qy, qz, qw].

    The values are the reference frame's pose in the camera optical frame, the order of
    geometry_msgs/Pose and of a static_transform_publisher's arguments. The quaternion is
    renormalised after the check, so that R is a rotation even from rounded values.
    """
    try:
        pose = np.array(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        pose = np.array([np.nan])
    if pose.size != 7 or not np.isfinite(pose).all():
        raise UnusableReference(
            REFERENCE_EXTRINSIC, f"The reference extrinsic {values} is not 7 finite "
            "numbers; expected [x, y, z, qx, qy, qz, qw]: the reference frame's position "
            "(metres) and orientation (unit quaternion) in the camera optical frame.")
    length = float(np.linalg.norm(pose[3:]))
    if abs(length - 1.0) > _QUATERNION_TOLERANCE:
        raise UnusableReference(
            REFERENCE_EXTRINSIC, f"The reference extrinsic's quaternion (qx, qy, qz, qw) = "
            f"{tuple(pose[3:].tolist())} has length {length:.4f}; a rotation needs a unit "
            "quaternion, e.g. [0, 0, 0, 1] for none.")
    x, y, z, w = pose[3:] / length
    rotation = np.array([
        [1.0 - 2.0 * (y * y + z * z), 2.0 * (x * y - z * w), 2.0 * (x * z + y * w)],
        [2.0 * (x * y + z * w), 1.0 - 2.0 * (x * x + z * z), 2.0 * (y * z - x * w)],
        [2.0 * (x * z - y * w), 2.0 * (y * z + x * w), 1.0 - 2.0 * (x * x + y * y)],
    ])
    return rotation, pose[:3].copy()


def point_samples(points: np.ndarray, rotation: np.ndarray, translation: np.ndarray,
                  intrinsics: Intrinsics) -> ReferenceSamples:
    """Project a cloud (N, 3), given in the reference frame, onto the output's pixels.

    ``intrinsics`` describe the output image. Where several points fall on one pixel the
    nearest is kept: it is the surface the camera sees there, and the points behind it (seen
    by a sensor mounted elsewhere, or the far side of a thin object) are hidden from the
    camera and would only be outliers.
    """
    intrinsics.validate()
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 3:
        raise UnusableReference(REFERENCE_EMPTY, f"The reference cloud has shape "
                                f"{points.shape}; expected (N, 3) x, y, z points in metres.")
    if points.shape[0] == 0:
        raise UnusableReference(REFERENCE_EMPTY, "The reference cloud has no points; "
                                "expected points in metres that the camera sees.")
    dtype = np.float32 if points.dtype == np.float32 else np.float64
    rotation = np.asarray(rotation, np.float64)
    translation = np.asarray(translation, np.float64)
    # Plain ufuncs rather than matrix products (BLAS would start threads that compete with
    # the network's), and z first and alone: much of a 360-degree cloud is behind the
    # camera, so x and y are computed only for what is in front. NaN fails the comparison
    # and drops out here.
    with np.errstate(invalid="ignore", over="ignore"):
        z = _row_dot((points[:, 0], points[:, 1], points[:, 2]), rotation[2], translation[2],
                     dtype)
        front = np.flatnonzero((z > MIN_POINT_DEPTH) & (z < np.inf))
        ahead = tuple(points[:, k][front] for k in range(3))
        z = z[front]
        u = _row_dot(ahead, rotation[0], translation[0], dtype)
        u /= z
        u *= dtype(intrinsics.fx)
        u += dtype(intrinsics.cx)
        v = _row_dot(ahead, rotation[1], translation[1], dtype)
        v /= z
        v *= dtype(intrinsics.fy)
        v += dtype(intrinsics.cy)
    inside = (u > -0.5) & (u < intrinsics.width - 0.5)
    inside &= (v > -0.5) & (v < intrinsics.height - 0.5)
    if not inside.any():
        if not np.isfinite(points).all(axis=1).any():
            raise UnusableReference(
                REFERENCE_NON_FINITE, f"None of the reference cloud's {points.shape[0]} points "
                "is finite; expected x, y, z in metres (NaN marks a missing return).")
        raise UnusableReference(
            REFERENCE_EMPTY, f"None of the reference cloud's {points.shape[0]} points lies in "
            f"the camera's view (in front of it by more than {MIN_POINT_DEPTH} m and inside "
            f"the {intrinsics.width}x{intrinsics.height} image); check the reference "
            "extrinsic or TF between the cloud's frame and the camera's optical frame.")
    rows = np.floor(v[inside] + 0.5).astype(np.int64)
    cols = np.floor(u[inside] + 0.5).astype(np.int64)
    depth = z[inside].astype(np.float32)
    # One integer sort by (pixel, depth): the first entry of each pixel is its nearest point.
    key = np.left_shift(rows * intrinsics.width + cols, _DEPTH_BITS)
    key |= depth.view(np.uint32).astype(np.int64)
    key.sort()
    pixel = key >> _DEPTH_BITS
    first = np.ones(pixel.size, np.bool_)
    np.not_equal(pixel[1:], pixel[:-1], out=first[1:])
    key = key[first]
    pick = _evenly(key.size, MAX_SAMPLES)
    if pick is not None:
        key = key[pick]
    rows, cols = np.divmod(key >> _DEPTH_BITS, intrinsics.width)
    depth = (key & 0xFFFFFFFF).astype(np.uint32).view(np.float32)
    return ReferenceSamples(rows=rows.astype(np.intp), cols=cols.astype(np.intp), depth=depth)


def _row_dot(columns: Sequence[np.ndarray], row: np.ndarray, offset: float,
             dtype: type[np.floating]) -> np.ndarray:
    """Return row . p + offset for every point p, given its x, y, z columns."""
    result = columns[0] * dtype(row[0])
    for column, factor in zip(columns[1:], row[1:]):
        result += column * dtype(factor)
    result += dtype(offset)
    return result


class GroundPlane:
    """Supply the depth of a flat floor from the camera's height and orientation above it.

    ``camera_height`` is the optical centre's height above the floor in metres.
    ``pitch_deg`` is how far the optical axis points below the horizon (positive = looking
    down). ``roll_deg`` is the rotation about the optical axis, applied after the pitch:
    positive when the camera's right side (+x, the image's right edge) is lower than its
    left, so the horizon rises towards the image's right and, along a row, the floor is
    nearer on the right than on the left. In the camera optical frame the downward vertical
    is then g = (sin(roll) cos(pitch), cos(roll) cos(pitch), sin(pitch)), and the floor is
    the plane g . p = camera_height.

    Obstacles standing on the floor are not known here: at their pixels the floor depth
    behind them is too far, and the robust fit treats those samples as outliers.
    """

    def __init__(self, camera_height: float, pitch_deg: float, roll_deg: float) -> None:
        if not (math.isfinite(camera_height) and camera_height > 0.0):
            raise ValueError(f"camera_height must be finite and > 0 metres above the floor, "
                             f"got {camera_height}")
        for name, value in (("pitch_deg", pitch_deg), ("roll_deg", roll_deg)):
            if not (math.isfinite(value) and abs(value) < 90.0):
                raise ValueError(f"{name} must be a finite angle between -90 and 90 degrees, "
                                 f"got {value}")
        self.camera_height = float(camera_height)
        self.pitch_deg = float(pitch_deg)
        self.roll_deg = float(roll_deg)
        pitch, roll = math.radians(pitch_deg), math.radians(roll_deg)
        self._down = (math.sin(roll) * math.cos(pitch), math.cos(roll) * math.cos(pitch),
                      math.sin(pitch))
        self._intrinsics: Optional[Intrinsics] = None
        self._depth = np.empty((0, 0), np.float32)
        nothing = np.empty(0, np.intp)
        self._samples = ReferenceSamples(rows=nothing, cols=nothing,
                                         depth=np.empty(0, np.float32))

    def depth(self, intrinsics: Intrinsics) -> np.ndarray:
        """Return the floor's depth z (H, W) float32; NaN where it is unseen or grazing.

        The result is cached for these intrinsics and read-only: every frame of a camera
        shares it.
        """
        self._update(intrinsics)
        return self._depth

    def samples(self, intrinsics: Intrinsics) -> ReferenceSamples:
        """Return the floor's depth on an even grid of its pixels, cached like ``depth``.

        Raises UnusableReference (REFERENCE_EMPTY) when the camera sees no usable floor, which
        is a mounting that the parameters describe wrongly rather than a passing state.
        """
        self._update(intrinsics)
        if len(self._samples) == 0:
            raise UnusableReference(
                REFERENCE_EMPTY, f"The floor is not in view: a camera {self.camera_height} m "
                f"above it, pitched {self.pitch_deg} degrees down and rolled {self.roll_deg} "
                f"degrees sees no floor at least {GROUND_MIN_ANGLE_DEG} degrees below its rays; "
                "check camera_height, camera_pitch_deg and camera_roll_deg.")
        return self._samples

    def _update(self, intrinsics: Intrinsics) -> None:
        """Compute depth and samples for new intrinsics; keep them while those stay the same."""
        if intrinsics == self._intrinsics:
            return
        intrinsics.validate()
        x = (np.arange(intrinsics.width) - intrinsics.cx) / intrinsics.fx
        y = (np.arange(intrinsics.height) - intrinsics.cy) / intrinsics.fy
        gx, gy, gz = self._down
        # Downward component of each pixel's ray (x, y, 1), and the ray's length.
        down = (gy * y)[:, np.newaxis] + (gx * x + gz)[np.newaxis, :]
        length = np.sqrt((y * y)[:, np.newaxis] + (x * x + 1.0)[np.newaxis, :])
        seen = down >= math.sin(math.radians(GROUND_MIN_ANGLE_DEG)) * length
        depth = np.full(down.shape, np.nan, np.float32)
        np.divide(self.camera_height, down, out=depth, where=seen, casting="unsafe")
        depth.setflags(write=False)
        count = int(np.count_nonzero(seen))
        if count == 0:
            rows = cols = np.empty(0, np.intp)
        else:
            stride = max(1, math.ceil(math.sqrt(count / MAX_SAMPLES)))
            rows, cols = np.nonzero(seen[::stride, ::stride])
            rows, cols = rows * stride, cols * stride
            pick = _evenly(rows.size, MAX_SAMPLES)
            if pick is not None:
                rows, cols = rows[pick], cols[pick]
        self._depth = depth
        self._samples = ReferenceSamples(rows=rows.astype(np.intp), cols=cols.astype(np.intp),
                                         depth=depth[rows, cols])
        self._intrinsics = intrinsics
