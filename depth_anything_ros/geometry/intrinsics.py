"""Pinhole camera intrinsics of a depth image, as ROS CameraInfo describes them.

Plain Python so it can be tested and benchmarked without ROS. Coordinates follow REP 103's
optical frame (z forward, x right, y down) and the pixel-centre convention used by ROS
CameraInfo: pixel (u, v) covers [u-0.5, u+0.5] x [v-0.5, v+0.5], so the image spans
[-0.5, W-0.5] horizontally.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Sequence


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
        """Return the same camera seen through the image resized to ``width`` x ``height``.

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
        """From a row-major 3x3 camera matrix (CameraInfo.k).

        Skew k[1] is ignored: ROS calibrations always write 0 there and depth_image_proc
        ignores it as well.
        """
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
