#!/usr/bin/env python3
"""Draw docs/pipeline.png: a camera image, its colorized depth and the point cloud.

The scene is rendered analytically (floor, back wall, two boxes) so its depth is known;
the colour and cloud stages are the package's own (Colorizer, RayGrid). Real Depth
Anything weights are not bundled, so the figure shows the output format, not a model's
accuracy.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402, I100 (must follow matplotlib.use)

from depth_anything_ros.geometry.colorize import Colorizer  # noqa: E402
from depth_anything_ros.geometry.intrinsics import Intrinsics  # noqa: E402
from depth_anything_ros.geometry.rays import RayGrid  # noqa: E402

H, W = 240, 320
CAMERA_HEIGHT = 0.6   # metres above the floor
WALL = 6.0            # metres ahead


def render() -> tuple[np.ndarray, np.ndarray]:
    """Ray-cast an optical-frame camera (z forward, y down) into floor, wall and boxes."""
    intr = Intrinsics.from_fov(W, H, 70.0)
    v, u = np.mgrid[0:H, 0:W].astype(np.float32)
    rx, ry = (u - intr.cx) / intr.fx, (v - intr.cy) / intr.fy
    depth = np.full((H, W), WALL, np.float32)
    colour = np.zeros((H, W, 3), np.float32)
    colour[:] = (200, 190, 170)                     # wall, BGR
    floor_z = np.where(ry > 1e-3, CAMERA_HEIGHT / np.maximum(ry, 1e-3), np.inf)
    floor = floor_z < depth
    depth[floor] = floor_z[floor]
    checker = ((np.floor(rx * depth * 2) + np.floor(depth * 2)) % 2).astype(np.float32)
    colour[floor] = (np.array([90, 110, 130]) + 40 * checker[floor, None])
    for x0, x1, z, top, bgr in ((-1.2, -0.4, 2.0, 0.0, (60, 60, 200)),
                                (0.3, 1.3, 3.5, -0.6, (180, 120, 40))):
        x, y = rx * z, ry * z
        face = (x >= x0) & (x <= x1) & (y >= top) & (y <= CAMERA_HEIGHT) & (z < depth)
        depth[face] = z
        colour[face] = bgr
    shade = np.clip(1.2 - depth / (1.5 * WALL), 0.4, 1.0)[..., None]
    return (colour * shade).astype(np.uint8), depth


def main() -> None:
    bgr, depth = render()
    intr = Intrinsics.from_fov(W, H, 70.0)
    points = RayGrid(intr, stride=2).points(depth, 0.1, 10.0)
    colours = bgr[::2, ::2][..., ::-1].reshape(-1, 3) / 255.0
    fig = plt.figure(figsize=(12, 3.6))
    ax = fig.add_subplot(1, 3, 1)
    ax.imshow(bgr[..., ::-1])
    ax.set_title("camera image (sensor_msgs/Image)")
    ax = fig.add_subplot(1, 3, 2)
    ax.imshow(Colorizer("turbo", 0.3, 8.0)(depth)[..., ::-1])
    ax.set_title("depth/colorized (32FC1 metres -> turbo)")
    for axis in fig.axes:
        axis.axis("off")
    ax = fig.add_subplot(1, 3, 3, projection="3d")
    xyz = points.reshape(-1, 3)
    keep = np.isfinite(xyz[:, 2])
    ax.scatter(xyz[keep, 0], xyz[keep, 2], -xyz[keep, 1], c=colours[keep], s=0.5)
    ax.set_xlabel("x right (m)")
    ax.set_ylabel("z forward (m)")
    ax.set_zlabel("-y up (m)")
    ax.view_init(elev=20, azim=-60)
    ax.set_title("depth/points (PointCloud2 xyzrgb)")
    fig.tight_layout()
    out = Path(__file__).resolve().parents[1] / "docs" / "pipeline.png"
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
