"""Synthetic camera scenes for calibration and node tests.

``scene``: an indoor-like room (floor, wall, boxes, texture). ``noise_scene``: random
colours over a gradient, where an image or cloud off by one pixel shows.
"""

from __future__ import annotations

import cv2
import numpy as np


def scene(seed: int, height: int = 480, width: int = 640) -> np.ndarray:
    """Make a BGR u8 indoor-like scene: perspective floor gradient, a wall, random boxes, noise."""
    rng = np.random.default_rng(seed)
    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    wall = np.array(rng.uniform(90, 200, 3), np.float32)
    floor = np.array(rng.uniform(40, 140, 3), np.float32)
    horizon = rng.uniform(0.35, 0.6)
    image = np.where(rows < horizon, wall, floor * (0.6 + 0.6 * rows))
    image = np.broadcast_to(image, (height, width, 3)).copy()
    for _ in range(int(rng.integers(3, 7))):
        x0, y0 = int(rng.integers(0, width - 60)), int(rng.integers(0, height - 60))
        x1, y1 = x0 + int(rng.integers(30, 200)), y0 + int(rng.integers(30, 200))
        cv2.rectangle(image, (x0, y0), (x1, y1), rng.uniform(0, 255, 3).tolist(), -1)
    image += rng.normal(0, 6, image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def noise_scene(seed: int, height: int, width: int) -> np.ndarray:
    """Make a BGR u8 image of random colours, with a left-right gradient in channel seed % 3.

    The depth it gives is not constant, and neighbouring pixels have unrelated colours, so
    a cloud or image shifted by one pixel shows.
    """
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    image[..., seed % 3] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    return image
