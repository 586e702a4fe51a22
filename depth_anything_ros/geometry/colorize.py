"""Depth (metres) to a BGR preview image through a fixed-range colour lookup table.

The range comes from parameters, not from each frame's min/max: with per-frame scaling the
same wall changes colour whenever something nearer enters the view, which makes the preview
useless for judging distance. Pure numpy (no OpenCV) so the node's colour output does not
depend on which colormaps a given OpenCV build ships.
"""

from __future__ import annotations

import math

import numpy as np

# Control colours (RGB hex) at t = 0, 1/16, ..., 1, sampled from OpenCV's COLORMAP_TURBO /
# _INFERNO / _VIRIDIS. Linear interpolation between 17 samples stays within 7/255 of the
# full 256-entry maps (checked in test_colorize), far below what a preview needs.
_CONTROL_POINTS = {
    "turbo": "30123b 4040a2 466be3 4293ff 28bbec 18dcc3 31f299 6bfe64 a2fc3c "
             "cced34 edd03a fdad35 fb8022 ec520f d23105 ac1701 7a0403",
    "inferno": "000004 0b0724 210c4a 3d0965 56106e 70196e 89226a a32c61 bb3654 "
               "d14545 e35932 f1721e f98c0a fcaa0f f9c932 f2e865 fcffa4",
    "viridis": "440154 48186a 472d7b 424086 3b528b 33638d 2c728e 26828e 21908c "
               "1f9f88 27ad81 3ebc74 5cc863 82d34d aadc32 d5e21a fde725",
}

COLORMAPS: tuple[str, ...] = ("turbo", "inferno", "viridis", "jet", "gray")

_LEVELS = 256
_INVALID = _LEVELS  # LUT row reserved for black; every valid level keeps its own colour


def colormap_rgb(name: str) -> np.ndarray:
    """Return the 256-entry (256, 3) uint8 RGB table for ``name``; level 0 is the low end."""
    t = np.linspace(0.0, 1.0, _LEVELS)
    if name in _CONTROL_POINTS:
        hexes = _CONTROL_POINTS[name].split()
        control = np.array([[int(h[i:i + 2], 16) for i in (0, 2, 4)] for h in hexes], np.float64)
        knots = np.linspace(0.0, 1.0, len(hexes))
        rgb = np.stack([np.interp(t, knots, control[:, c]) for c in range(3)], axis=1) / 255.0
    elif name == "jet":
        # MATLAB jet is piecewise linear: each channel is a trapezoid of slope 4 centred at
        # 3/4 (red), 1/2 (green) and 1/4 (blue), clipped at 1.
        centres = np.array([3.0, 2.0, 1.0])
        rgb = np.clip(1.5 - np.abs(4.0 * t[:, np.newaxis] - centres), 0.0, 1.0)
    elif name == "gray":
        rgb = np.repeat(t[:, np.newaxis], 3, axis=1)
    else:
        raise ValueError(f"unknown colormap {name!r}; valid: {', '.join(COLORMAPS)}")
    return np.round(rgb * 255.0).astype(np.uint8)


class Colorizer:
    """Maps depth in [min_depth, max_depth] metres onto a colormap; everything else is black.

    Without ``invert`` min_depth gets the map's low end (turbo: dark blue, near) and
    max_depth the high end (turbo: dark red, far); ``invert`` swaps them. Black marks NaN,
    ±Inf and out-of-range depth alike: the preview shows where depth is usable, not why not.
    """

    def __init__(self, colormap: str, min_depth: float, max_depth: float,
                 invert: bool = False) -> None:
        if not (math.isfinite(min_depth) and math.isfinite(max_depth)):
            raise ValueError(f"depth range must be finite, got [{min_depth}, {max_depth}]")
        if min_depth >= max_depth:
            raise ValueError(f"min_depth {min_depth} must be below max_depth {max_depth}")
        rgb = colormap_rgb(colormap)
        if invert:
            rgb = rgb[::-1]
        lut = np.zeros((_LEVELS + 1, 3), np.uint8)
        lut[:_LEVELS] = rgb[:, ::-1]  # BGR, the order ROS bgr8 and OpenCV use
        self._lut = lut
        self.colormap = colormap
        self.min_depth = float(min_depth)
        self.max_depth = float(max_depth)
        self.invert = bool(invert)
        self._gain = np.float32((_LEVELS - 1) / (self.max_depth - self.min_depth))
        # Work buffers for one image size, reallocated only when the size changes.
        self._level: np.ndarray = np.empty((0, 0), np.float32)
        self._invalid: np.ndarray = np.empty((0, 0), np.bool_)
        self._above: np.ndarray = np.empty((0, 0), np.bool_)
        self._index: np.ndarray = np.empty((0, 0), np.intp)

    def __call__(self, depth: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 BGR for an (H, W) depth image in metres (a new array)."""
        if depth.ndim != 2:
            raise ValueError(f"depth must be 2-D (H, W), got shape {depth.shape}")
        if self._level.shape != depth.shape:
            self._level = np.empty(depth.shape, np.float32)
            self._invalid = np.empty(depth.shape, np.bool_)
            self._above = np.empty(depth.shape, np.bool_)
            self._index = np.empty(depth.shape, np.intp)
        level, invalid = self._level, self._invalid
        # invalid = not (min <= d <= max); NaN fails both comparisons and lands here too.
        np.greater_equal(depth, self.min_depth, out=invalid)
        np.less_equal(depth, self.max_depth, out=self._above)
        np.logical_and(invalid, self._above, out=invalid)
        np.logical_not(invalid, out=invalid)
        np.subtract(depth, np.float32(self.min_depth), out=level, casting="same_kind")
        # +0.5 rounds to the nearest level in the truncating cast below.
        np.multiply(level, self._gain, out=level)
        np.add(level, np.float32(0.5), out=level)
        np.copyto(level, np.float32(_INVALID), where=invalid)
        np.copyto(self._index, level, casting="unsafe")
        return self._lut.take(self._index, axis=0)
