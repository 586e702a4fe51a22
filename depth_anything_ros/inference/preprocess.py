"""Upstream preprocessing in numpy + OpenCV: the reference the engine's version is held to.

Used for INT8 calibration and export verification (the network sees exactly what upstream
``image2tensor`` (V2) or DA3's ``InputProcessor`` gives it) and in tests; the engine runs
the same steps, the resizes on the host and the rest in the graph.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from depth_anything_ros.inference.metadata import IMAGENET_MEAN, IMAGENET_STD
from depth_anything_ros.inference.sizing import da3_resize_steps


def reference_tensor(bgr: np.ndarray, height: int, width: int,
                     mean: Sequence[float] = IMAGENET_MEAN,
                     std: Sequence[float] = IMAGENET_STD) -> np.ndarray:
    """(H,W,3) uint8 BGR -> (1,3,height,width) float32: RGB, /255, bicubic, normalise."""
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    resized = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_CUBIC)
    normalised = (resized - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(normalised.transpose(2, 0, 1)[None])


def da3_resize(pixels: np.ndarray, height: int, width: int,
               out: np.ndarray | None = None) -> np.ndarray:
    """Resize a uint8 image to the network size the way upstream DA3 does, in uint8.

    Upstream resizes the uint8 RGB image with OpenCV (INTER_AREA when shrinking,
    INTER_CUBIC when enlarging; a second resize to the multiples of 14) before /255, so the
    pixels are rounded to uint8 in between; per-channel resizes make the channel order
    irrelevant. When the camera size does not lead to ``height x width`` by upstream's rule
    (an IR exported for another camera), one resize goes straight there, with the same
    choice of interpolation, and the aspect ratio is stretched as V2's engine does.
    ``out``, when given, receives the result (the engine reuses it frame after frame).
    """
    if pixels.shape[:2] == (height, width):
        if out is None:
            return pixels
        np.copyto(out, pixels)
        return out
    steps = da3_resize_steps(*pixels.shape[:2])
    if not steps or steps[-1] != (height, width):
        steps = [(height, width)]
    current = pixels
    for index, (step_h, step_w) in enumerate(steps):
        grows = step_h > current.shape[0] or step_w > current.shape[1]
        last = index == len(steps) - 1
        current = cv2.resize(current, (step_w, step_h), dst=out if last else None,
                             interpolation=cv2.INTER_CUBIC if grows else cv2.INTER_AREA)
    return current


def da3_reference_tensor(bgr: np.ndarray, height: int, width: int,
                         mean: Sequence[float] = IMAGENET_MEAN,
                         std: Sequence[float] = IMAGENET_STD) -> np.ndarray:
    """(H,W,3) uint8 BGR -> (1,3,height,width) float32 as upstream DA3 feeds it.

    uint8 resizes (``da3_resize``), RGB, /255 and ImageNet mean/std in float32 as
    torchvision's ToTensor and Normalize compute them.
    """
    rgb = cv2.cvtColor(da3_resize(bgr, height, width), cv2.COLOR_BGR2RGB)
    scaled = rgb.astype(np.float32) / np.float32(255.0)
    normalised = (scaled - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(normalised.transpose(2, 0, 1)[None])
