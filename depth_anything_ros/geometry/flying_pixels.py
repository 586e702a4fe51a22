"""Removal of flying pixels: the veil of points a blurred depth edge leaves in free space.

The network smooths depth across object borders, so between a foreground object and its
background the image holds a ramp of intermediate depths. Back-projected, each ramp pixel
lies on its own ray at a depth between the two surfaces, and the ramp as a whole forms a
sheet stretched almost along the viewing rays: a veil that a voxel layer marks as obstacle.

Rule: drop a pixel when the surface through it meets its viewing ray at less than
``min_angle_deg``. Real surfaces seen edge-on do that too, but only as far out as geometry
allows: a floor seen from a height h meets the ray at asin(h/range), 2.86 deg at 10 m from
0.5 m. A veil is far flatter, because its slope comes from the blur, not from the scene: a
1.5 m step blurred over 6 pixels at 3 m with f = 525 px sits at 1.2 to 1.6 deg.

The slope along each image axis is the smaller of the forward and the backward depth step.
A face pixel bordering a ramp still has its flat side, so surfaces are kept up to their
last pixel; a ramp pixel is steep on both sides. The price: a ramp pixel next to a surface
survives while its step to that surface stays below z/(f*sin(min_angle)*|r|), 0.16 m at
3 m here, so the veil's outermost point can stay within that distance of a face it borders;
the gentle tails of a smoother (Gaussian-like) transition survive for the same reason.
NaN or infinite neighbours carry no position, so that side is ignored; a pixel with neither
side valid on an axis has no slope there and is judged by the other axis alone.

With the step s (metres per pixel) the surface tangent along u is s*r + (z/fx)*e_x and the
ray is r = ((u-cx)/fx, (v-cy)/fy, 1). Their normal gives sin(angle) = 1/(|r|*|n|) with
|n|^2 = gu^2 + gv^2 + (1 + gu*x + gv*y)^2 and g = s*f/z. The last term needs the sign of each
step; choosing the smaller step with its sign (minmod) tripled the cost at VGA (5.0 ms
against 1.6 ms) and moved the acceptance scene's veil removal by 0.02 points. So it is
dropped: that is exact for surfaces whose normal is perpendicular to the optical axis (the
floor, walls along a corridor: the grazing surfaces a ground robot sees) and otherwise
overstates the angle, so the error only ever keeps points. The rule is then
fx^2*su^2 + fy^2*sv^2 <= z^2/(sin^2(min_angle)*|r|^2) to keep a pixel, with |r| folded into
a per-pixel table built once per camera, so it costs nothing per frame.

Default 2 deg: along the acceptance scene's box edges the veil reaches 1.6 deg at its far
end, and the 10 m floor falls to 2.5 deg in the VGA corner (the ray there is 31 deg
off-axis), so 2 deg leaves about 0.4 deg either side. Floors survive out to a range of
h/sin(min_angle), 14 m from 0.5 m.

The keep mask judges slope only: NaN is never kept (it has no position), ±Inf is kept so that
writing NaN through the mask leaves REP 117's no-return/too-close markers as they are.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from depth_anything_ros.geometry.intrinsics import Intrinsics

DEFAULT_MIN_ANGLE_DEG = 2.0

_FLOAT32_MAX = float(np.finfo(np.float32).max)


class FlyingPixelFilter:
    """Finds flying pixels in depth images of one size, reusing its buffers between frames.

    About a dozen whole-image OpenCV/numpy operations and no temporaries, so it fits in a
    frame's budget; the buffers are rebuilt only when the image size changes, the per-pixel
    limit table only when the intrinsics do.
    """

    def __init__(self, min_angle_deg: float = DEFAULT_MIN_ANGLE_DEG) -> None:
        if not (math.isfinite(min_angle_deg) and 0.0 < min_angle_deg < 90.0):
            raise ValueError(f"min_angle_deg must be in (0, 90) degrees, got {min_angle_deg}")
        self.min_angle_deg = float(min_angle_deg)
        self._sin2 = math.sin(math.radians(self.min_angle_deg)) ** 2
        self._shape: tuple[int, int] = (0, 0)
        self._intrinsics: Intrinsics | None = None
        self._allocate(self._shape)

    def keep_mask(self, depth: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
        """(H, W) bool, True where the pixel is a surface point worth keeping.

        The array is this filter's own buffer, overwritten by the next call; copy it to keep.
        """
        self._prepare(depth, intrinsics)
        step_u = self._steps_u.smaller(depth[:, :-1], depth[:, 1:])
        step_v = self._steps_v.smaller(depth[:-1], depth[1:])
        slope = self._slope
        # fy^2 sv^2 + fx^2 su^2, divided by fx^2 so the limit table absorbs fx.
        cv2.multiply(step_v, step_v, dst=slope, scale=self._fy_over_fx2)
        cv2.accumulateSquare(step_u, slope)
        limit = self._limit
        cv2.multiply(depth, self._limit_per_z2, dst=limit)
        cv2.multiply(limit, depth, dst=limit)
        np.less_equal(slope, limit, out=self._keep)
        return self._keep

    def remove(self, depth: np.ndarray, intrinsics: Intrinsics, out: np.ndarray) -> np.ndarray:
        """Write ``depth`` with its flying pixels set to NaN into ``out`` and return ``out``.

        ``out`` may be ``depth`` itself to filter in place; it must be float32 of the same
        shape. This is the form depth/image and the cloud builder consume directly.
        """
        if out.shape != depth.shape or out.dtype != np.float32:
            raise ValueError(f"out must be float32 of shape {depth.shape}, "
                             f"got {out.dtype} {out.shape}")
        keep = self.keep_mask(depth, intrinsics)
        if out is not depth:
            np.copyto(out, depth)
        np.logical_not(keep, out=self._drop)
        # OpenCV's masked copy costs the same for any mask; numpy's copyto(where=) grows
        # with the share of dropped pixels (0.5 ms for 2 %, 2 ms and more for a noisy frame).
        cv2.copyTo(self._nan, self._drop.view(np.uint8), out)
        return out

    def _prepare(self, depth: np.ndarray, intrinsics: Intrinsics) -> None:
        if depth.dtype != np.float32 or depth.ndim != 2:
            raise ValueError(f"depth must be a 2-D float32 image (32FC1), got {depth.dtype} "
                             f"with shape {depth.shape}")
        if depth.shape != (intrinsics.height, intrinsics.width):
            raise ValueError(f"depth has shape {depth.shape} but intrinsics are for "
                             f"{(intrinsics.height, intrinsics.width)}")
        if depth.shape != self._shape:
            self._allocate(depth.shape)
        if intrinsics != self._intrinsics:
            self._build_limit_table(intrinsics.validate())

    def _allocate(self, shape: tuple[int, int]) -> None:
        h, w = shape
        self._shape = (h, w)
        self._steps_u = _OneSidedSteps(h, w, axis=1)
        self._steps_v = _OneSidedSteps(h, w, axis=0)
        self._slope = np.empty((h, w), np.float32)
        self._limit = np.empty((h, w), np.float32)
        self._keep = np.empty((h, w), np.bool_)
        self._drop = np.empty((h, w), np.bool_)
        self._nan = np.full((h, w), np.nan, np.float32)
        self._intrinsics = None

    def _build_limit_table(self, intrinsics: Intrinsics) -> None:
        """Per-pixel 1/(fx^2 sin^2(min_angle) |r|^2): the allowed slope is this times z^2."""
        h, w = self._shape
        x = (np.arange(w, dtype=np.float64) - intrinsics.cx) / intrinsics.fx
        y = (np.arange(h, dtype=np.float64) - intrinsics.cy) / intrinsics.fy
        ray_norm2 = 1.0 + x[np.newaxis, :] ** 2 + y[:, np.newaxis] ** 2
        table = 1.0 / (intrinsics.fx ** 2 * self._sin2 * ray_norm2)
        self._limit_per_z2 = table.astype(np.float32)
        self._fy_over_fx2 = (intrinsics.fy / intrinsics.fx) ** 2
        self._intrinsics = intrinsics


class _OneSidedSteps:
    """The smaller one-sided |depth step| per pixel along one image axis.

    The steps between neighbours go into a buffer one longer than the image along the axis,
    with a pad at each end standing for the missing neighbour beyond the border. Pixel i's
    backward step is then entry i and its forward step entry i+1: two offset views, so the
    comparison of both sides is one pass with no copies.
    """

    def __init__(self, height: int, width: int, axis: int) -> None:
        padded_shape = (height + 1, width) if axis == 0 else (height, width + 1)
        self._padded = np.full(padded_shape, np.inf, np.float32)
        if axis == 0:
            self._inner = self._padded[1:-1]
            self._backward, self._forward = self._padded[:-1], self._padded[1:]
        else:
            self._inner = self._padded[:, 1:-1]
            self._backward, self._forward = self._padded[:, :-1], self._padded[:, 1:]
        self._out = np.empty((height, width), np.float32)

    def smaller(self, behind: np.ndarray, ahead: np.ndarray) -> np.ndarray:
        """Return the steps (metres per pixel) from two offset views of the depth image.

        A step to a NaN or infinite neighbour becomes +inf so the other side wins; where
        both are missing the result is 0, no slope, rather than a verdict without evidence.
        """
        cv2.absdiff(ahead, behind, dst=self._inner)
        cv2.patchNaNs(self._padded, np.inf)
        cv2.min(self._backward, self._forward, dst=self._out)
        cv2.threshold(self._out, _FLOAT32_MAX, 0.0, cv2.THRESH_TOZERO_INV, dst=self._out)
        return self._out
