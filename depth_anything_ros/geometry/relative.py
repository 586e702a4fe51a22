"""Relative outputs to metres: V2's affine-invariant inverse depth, DA3's depth up to scale."""

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


def relative_depth_to_metric(depth: np.ndarray, scale: float, shift: float) -> np.ndarray:
    """Metric depth (float32 metres) from a relative *depth* output (DA3 Mono, Small, Base).

    Those models predict depth up to an unknown scale (larger is farther), so metres =
    scale * depth + shift. A result that is not positive (or a NaN input) is NaN, REP 117
    invalid, as in ``relative_to_metric``.
    """
    metres = np.asarray(depth, dtype=np.float32) * np.float32(scale)
    metres += np.float32(shift)
    metres[~(metres > 0)] = np.nan
    return metres


def relative_to_metres(raw: np.ndarray, scale: float, shift: float, inverse: bool) -> np.ndarray:
    """Metres from a relative output: inverse depth (``inverse``, V2) or depth (DA3)."""
    convert = relative_to_metric if inverse else relative_depth_to_metric
    return convert(raw, scale, shift)
