"""Dropping the cloud points the network itself is least sure of.

DA3-Small and Base predict a per-pixel confidence beside depth. Upstream's own point-cloud
export keeps only the more confident pixels of each view (it drops the lowest 40 % by a
per-view percentile); a costmap gains the same way, since the points a network doubts are
where its depth is worst: object edges, thin structures, texture-less and noisy areas.
"""

from __future__ import annotations

import numpy as np


def drop_least_confident(points: np.ndarray, confidence: np.ndarray,
                         fraction: float) -> int:
    """Set the least confident ``fraction`` of the finite points to NaN, in place.

    ``points`` is an organized (H, W, 3) cloud, NaN where there is no point; ``confidence``
    (H, W) belongs to the same pixels. The cut is a percentile over this frame's finite
    points only, so the fraction holds whatever the range cut or the sky left out, and a
    model whose confidence drifts from frame to frame still keeps the same share. Returns
    how many points were dropped.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    if points.shape[:2] != confidence.shape:
        raise ValueError(f"confidence {confidence.shape} does not match the cloud "
                         f"{points.shape[:2]}")
    finite = np.isfinite(points[..., 2])
    count = int(np.count_nonzero(finite))
    drop = int(round(fraction * count))
    if drop == 0:
        return 0
    values = confidence[finite]
    # The drop-th smallest value is the cut: exactly ``drop`` points go unless values tie.
    cut = np.partition(values, drop - 1)[drop - 1]
    doubted = finite & (confidence <= cut)
    points[doubted] = np.nan
    return int(np.count_nonzero(doubted))
