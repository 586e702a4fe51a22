"""Back-projection of depth images into organized xyz grids (REP 103 optical frame).

Pure numpy, so the node, the CLI and the benchmarks build clouds the same way.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from depth_anything_ros.geometry.intrinsics import Intrinsics

# Depths at or beyond this are not representable as float32 and have no position.
_FLOAT32_MAX = float(np.finfo(np.float32).max)


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
        # OpenCV's masked copy costs the same for any mask, numpy's copyto(where=) grows
        # with how scattered it is (1.4 ms more at VGA once flying pixels are NaN).
        cv2.copyTo(np.ascontiguousarray(sample, np.float32), valid.view(np.uint8), z)
        out = self._points
        np.multiply(z, self._ray_x, out=out[..., 0])
        np.multiply(z, self._ray_y, out=out[..., 1])
        out[..., 2] = z
        return out
