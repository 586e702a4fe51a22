"""Pinhole camera geometry for depth images: intrinsics, back-projection, relative→metric.

Pure numpy so it can be tested and benchmarked without ROS. Coordinates follow REP 103's
optical frame (z forward, x right, y down) and the pixel-centre convention used by ROS
CameraInfo: pixel (u, v) covers [u-0.5, u+0.5] x [v-0.5, v+0.5], so the image spans
[-0.5, W-0.5] horizontally.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

# Depths at or beyond this are not representable as float32 and have no position.
_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class Intrinsics:
    """Focal lengths and principal point in pixels for an image of ``width`` x ``height``."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def validate(self) -> "Intrinsics":
        """Raise ValueError naming the first unusable value; return self for chaining.

        A zero focal length is what an uncalibrated camera publishes, and a negative or
        non-finite one would silently mirror or poison every point, so both are refused here
        rather than discovered as a garbage cloud.
        """
        for name in ("fx", "fy"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0.0:
                raise ValueError(f"focal length {name}={value} must be finite and > 0 "
                                 "(0 means the camera is uncalibrated)")
        for name in ("cx", "cy"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise ValueError(f"principal point {name}={value} must be finite")
        for name in ("width", "height"):
            value = getattr(self, name)
            if int(value) != value or value <= 0:
                raise ValueError(f"image {name}={value} must be a positive integer")
        return self

    def scaled(self, width: int, height: int) -> "Intrinsics":
        """The same camera seen through the image resized to ``width`` x ``height``.

        Resizing maps continuous image coordinates x' = x*s where x is measured from the
        image's outer edge. Pixel centres sit 0.5 from that edge, hence
        cx' = (cx + 0.5)*s - 0.5; scaling cx alone would shift the principal point by
        half a pixel per halving, which shows up as a skewed cloud at low resolution.
        """
        if width <= 0 or height <= 0:
            raise ValueError(f"target size must be positive, got {width}x{height}")
        sx = width / self.width
        sy = height / self.height
        return Intrinsics(fx=self.fx * sx, fy=self.fy * sy,
                          cx=(self.cx + 0.5) * sx - 0.5, cy=(self.cy + 0.5) * sy - 0.5,
                          width=int(width), height=int(height))

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float) -> "Intrinsics":
        """Fallback when no CameraInfo arrives: square pixels, principal point at the centre.

        The horizontal field of view spans the full image edge to edge (W pixels), so
        fx = (W/2) / tan(hfov/2). The centre in pixel-centre coordinates is (W-1)/2.
        """
        if not (math.isfinite(hfov_deg) and 0.0 < hfov_deg < 180.0):
            raise ValueError(
                f"horizontal field of view must be in (0, 180) degrees, got {hfov_deg}")
        if width <= 0 or height <= 0:
            raise ValueError(f"image size must be positive, got {width}x{height}")
        f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
        return cls(fx=f, fy=f, cx=(width - 1) / 2.0, cy=(height - 1) / 2.0,
                   width=int(width), height=int(height)).validate()

    @classmethod
    def from_k(cls, k: Sequence[float], width: int, height: int) -> "Intrinsics":
        """From a row-major 3x3 camera matrix (CameraInfo.k). Skew k[1] is ignored: ROS
        calibrations always write 0 there and depth_image_proc ignores it as well."""
        values = [float(v) for v in k]
        if len(values) != 9:
            raise ValueError(f"K must have 9 values (row-major 3x3), got {len(values)}")
        return cls(fx=values[0], fy=values[4], cx=values[2], cy=values[5],
                   width=int(width), height=int(height)).validate()

    def k_matrix(self) -> tuple[float, ...]:
        """Row-major 3x3 camera matrix for CameraInfo.k."""
        return (self.fx, 0.0, self.cx,
                0.0, self.fy, self.cy,
                0.0, 0.0, 1.0)

    def p_matrix(self) -> tuple[float, ...]:
        """Row-major 3x4 projection for CameraInfo.p: a monocular camera, no baseline term."""
        return (self.fx, 0.0, self.cx, 0.0,
                0.0, self.fy, self.cy, 0.0,
                0.0, 0.0, 1.0, 0.0)


class RayGrid:
    """Back-projects depth images of one camera, reusing its ray table and output buffer.

    Rays depend only on intrinsics and stride, so they are computed once; every frame then
    costs three multiplies and a mask. Rebuild the grid when either changes (Intrinsics
    compares by value, so ``grid.intrinsics != new`` is the test).
    """

    def __init__(self, intrinsics: Intrinsics, stride: int = 1) -> None:
        intrinsics.validate()
        if int(stride) != stride or stride < 1:
            raise ValueError(f"stride must be an integer >= 1, got {stride}")
        self.intrinsics = intrinsics
        self.stride = int(stride)
        us = np.arange(0, intrinsics.width, self.stride, dtype=np.float64)
        vs = np.arange(0, intrinsics.height, self.stride, dtype=np.float64)
        # Shaped for broadcasting against an (h', w') depth sample.
        self._ray_x = ((us - intrinsics.cx) / intrinsics.fx).astype(np.float32)[np.newaxis, :]
        self._ray_y = ((vs - intrinsics.cy) / intrinsics.fy).astype(np.float32)[:, np.newaxis]
        shape = (vs.size, us.size)
        self._z = np.empty(shape, np.float32)
        self._valid = np.empty(shape, np.bool_)
        self._below_max = np.empty(shape, np.bool_)
        self._points = np.empty(shape + (3,), np.float32)

    @property
    def shape(self) -> tuple[int, int]:
        """(h', w') of the decimated output: ceil(H/stride), ceil(W/stride)."""
        return self._z.shape  # type: ignore[return-value]

    def points(self, depth: np.ndarray, min_range: float = 0.0,
               max_range: float = math.inf) -> np.ndarray:
        """(h', w', 3) float32 xyz in metres; NaN xyz where the depth is unusable.

        Range is the z (depth) value, not the Euclidean distance: it is what the depth image
        stores and what a camera's working range is specified in, and comparing it needs no
        square root. Unusable: NaN, ±Inf (REP 117 no-return/too-close carry no position),
        <= 0, < min_range or > max_range.

        The returned array is this grid's own buffer, overwritten by the next call; copy it
        to keep it.
        """
        h, w = self.intrinsics.height, self.intrinsics.width
        if depth.shape != (h, w):
            raise ValueError(f"depth has shape {depth.shape} but intrinsics are for {(h, w)}")
        if not min_range <= max_range:
            raise ValueError(f"min_range {min_range} must not exceed max_range {max_range}")
        sample = depth[::self.stride, ::self.stride]
        z, valid = self._z, self._valid
        # NaN fails every comparison, so it drops out of `valid` without a separate isnan.
        # Bounds are compared in float32, the depth's own precision.
        lower = np.float32(min_range)
        if lower > 0.0:
            np.greater_equal(sample, lower, out=valid)
        else:
            np.greater(sample, np.float32(0.0), out=valid)
        np.less_equal(sample, np.float32(min(max_range, _FLOAT32_MAX)), out=self._below_max)
        np.logical_and(valid, self._below_max, out=valid)
        z.fill(np.nan)
        np.copyto(z, sample, where=valid, casting="same_kind")
        out = self._points
        np.multiply(z, self._ray_x, out=out[..., 0])
        np.multiply(z, self._ray_y, out=out[..., 1])
        out[..., 2] = z
        return out


def relative_to_metric(inverse_depth: np.ndarray, scale: float, shift: float) -> np.ndarray:
    """Metric depth (float32 metres) from Depth Anything's relative output.

    Relative models predict inverse depth up to an unknown affine map (disparity-like:
    larger is nearer, zero is the far end after the final ReLU), so depth = 1 / (scale*inv +
    shift) with scale/shift fitted to the scene (e.g. from a known distance or a sparse
    sensor). A non-positive denominator means "at or beyond infinity" under that fit, which
    has no metric depth: those pixels are NaN (REP 117 invalid), as are NaN inputs.
    """
    denominator = np.asarray(inverse_depth, dtype=np.float32) * np.float32(scale)
    denominator += np.float32(shift)
    depth = np.full(denominator.shape, np.nan, dtype=np.float32)
    np.divide(np.float32(1.0), denominator, out=depth, where=denominator > 0)
    return depth
