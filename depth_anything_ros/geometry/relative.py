"""Relative (affine-invariant inverse) depth to metres."""

from __future__ import annotations

import numpy as np


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
