"""Upstream preprocessing in numpy + OpenCV: the reference the engine's version is held to.

Used for INT8 calibration and export verification (the network sees exactly what upstream
``image2tensor`` gives it) and in tests; the engine runs the same steps, most in the graph.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from depth_anything_ros.inference.metadata import IMAGENET_MEAN, IMAGENET_STD


def reference_tensor(bgr: np.ndarray, height: int, width: int,
                     mean: Sequence[float] = IMAGENET_MEAN,
                     std: Sequence[float] = IMAGENET_STD) -> np.ndarray:
    """(H,W,3) uint8 BGR -> (1,3,height,width) float32: RGB, /255, bicubic, normalise."""
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    resized = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_CUBIC)
    normalised = (resized - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(normalised.transpose(2, 0, 1)[None])
