#!/usr/bin/env python3
"""Draw docs/flying_pixels.png and docs/rectification.png for the clean-geometry features.

Both scenes are rendered analytically, so the true surfaces are known and the figures can
state how far each cloud is from them; they show what the geometry stages do to a depth
image, not how accurate any network or camera is. The stages themselves are the package's
own (FlyingPixelFilter, Rectifier, RayGrid), so the pictures move when the code does.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402, I100 (must follow matplotlib.use)

from depth_anything_ros.geometry.calibration import (  # noqa: E402 (after matplotlib.use)
    calibration_intrinsics, CameraCalibration, IDENTITY_3X3)
from depth_anything_ros.geometry.flying_pixels import FlyingPixelFilter  # noqa: E402
from depth_anything_ros.geometry.intrinsics import Intrinsics  # noqa: E402
from depth_anything_ros.geometry.rays import RayGrid  # noqa: E402
from depth_anything_ros.geometry.rectify import (  # noqa: E402 (after matplotlib.use)
    rectified_intrinsics, Rectifier)

DOCS = Path(__file__).resolve().parents[1] / "docs"
CAMERA = Intrinsics(fx=525.0, fy=525.0, cx=319.5, cy=239.5, width=640, height=480)
FIGSIZE = (9.0, 3.5)
DPI = 100

CAMERA_HEIGHT = 0.5   # metres above the floor
FLOOR_RANGE = 10.0    # the floor ends here; beyond it the image has no depth (sky)
WALL_DEPTH = 4.0
WALL_RIGHT_EDGE = 0.8  # x at which the wall ends, so the floor is seen out to its far end
BOX_DEPTH = 2.5
BOX_LEFT, BOX_RIGHT, BOX_TOP = -0.7, 0.2, -0.3  # the box stands on the floor
BLUR_PX = 6
SKY, FLOOR, WALL, BOX = range(4)  # surface ids; SKY has no depth
SURFACE_TOLERANCE = 0.01  # a pixel within 1 % of its true surface's depth is not veil
MIN_ANGLE_DEG = 2.0
CLOUD_STRIDE = 2      # every 2nd pixel each way is drawn; counts are over all pixels

LENS = (-0.3, 0.1, 0.001, -0.0015, 0.0)  # plumb_bob k1, k2, p1, p2, k3
PLANE_TILT_DEG = 20.0  # about y
PLANE_DISTANCE = 2.0   # metres, where the plane crosses the optical axis
PLANE_STRIDE = 8
# Tight enough that the renderer's own error is far below the rectified cloud's.
UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 200, 1e-15)


def pinhole_rays(camera: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel ray slopes (u-cx)/fx and (v-cy)/fy, full image shape."""
    x = (np.arange(camera.width) - camera.cx) / camera.fx
    y = (np.arange(camera.height) - camera.cy) / camera.fy
    return np.broadcast_arrays(x[np.newaxis, :], y[:, np.newaxis])


def render_box_scene() -> tuple[np.ndarray, np.ndarray]:
    """Sharp depth of floor, wall and box, and which of them (FLOOR, WALL, BOX or SKY) each is.

    Per pixel the nearest surface its ray meets wins; NaN depth (SKY) is where none is hit,
    beyond the floor's end and above it right of the wall's edge.
    """
    x, y = pinhole_rays(CAMERA)
    with np.errstate(divide="ignore"):
        floor = np.where(y > 0.0, CAMERA_HEIGHT / y, np.nan)
    floor[~(floor <= FLOOR_RANGE)] = np.nan
    wall = np.where(x * WALL_DEPTH <= WALL_RIGHT_EDGE, WALL_DEPTH, np.nan)
    on_box = ((x * BOX_DEPTH >= BOX_LEFT) & (x * BOX_DEPTH <= BOX_RIGHT)
              & (y * BOX_DEPTH >= BOX_TOP) & (y * BOX_DEPTH <= CAMERA_HEIGHT))
    box = np.where(on_box, BOX_DEPTH, np.nan)
    surfaces = np.nan_to_num(np.stack([floor, wall, box]), nan=np.inf)
    ids = np.where(np.isfinite(surfaces.min(axis=0)), FLOOR + surfaces.argmin(axis=0), SKY)
    return surfaces.min(axis=0).astype(np.float32), ids.astype(np.uint8)


def window_surfaces(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest surface id in each pixel's BLUR_PX window: the surfaces it blends.

    Sky does not count: it has no depth to blend, so a surface next to it stays sharp.
    """
    kernel = np.ones((BLUR_PX, BLUR_PX), np.uint8)
    lowest = cv2.erode(np.where(ids == SKY, np.uint8(255), ids), kernel)
    return lowest, cv2.dilate(ids, kernel)


def mixed_windows(ids: np.ndarray) -> np.ndarray:
    """Pixels whose window holds more than one surface: where the edges blur."""
    lowest, highest = window_surfaces(ids)
    return lowest != highest


def blur_edges(sharp: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Blend surfaces into each other over BLUR_PX pixels at their borders, as the network does.

    Only the borders are blurred, so flat surfaces stay exactly on their planes and every
    point off them is the edge's doing. The average runs over pixels with depth only: sky
    has none to blend in, and a plain box filter would spread its NaN over the floor's far
    end, hiding what the filter keeps there.
    """
    valid = np.isfinite(sharp)
    size, border = (BLUR_PX, BLUR_PX), cv2.BORDER_REPLICATE
    total = cv2.blur(np.where(valid, sharp, 0.0).astype(np.float32), size, borderType=border)
    weight = cv2.blur(valid.astype(np.float32), size, borderType=border)
    with np.errstate(divide="ignore", invalid="ignore"):
        blurred = np.where(mixed_windows(ids), total / weight, sharp).astype(np.float32)
    blurred[~valid] = np.nan
    return blurred


def side_view(ax: plt.Axes, xyz: np.ndarray, colour: str, label: str) -> None:
    """Scatter points as seen from the camera's right: z forward, height (-y) up."""
    ax.scatter(xyz[:, 2], -xyz[:, 1], s=1.5, c=colour, marker=".", linewidths=0, label=label)


def style_side_view(ax: plt.Axes, title: str) -> None:
    """Shared limits, so the two panels compare point for point."""
    ax.set_xlim(0.0, FLOOR_RANGE + 0.5)
    ax.set_ylim(-CAMERA_HEIGHT - 0.2, 2.0)
    ax.set_xlabel("z forward (m)")
    ax.set_ylabel("height -y (m)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)


def flying_pixel_figure() -> None:
    """Side view of the box scene's cloud before and after the flying-pixel filter."""
    sharp, ids = render_box_scene()
    depth = blur_edges(sharp, ids)
    keep = FlyingPixelFilter(min_angle_deg=MIN_ANGLE_DEG).keep_mask(depth, CAMERA).copy()
    has_depth = np.isfinite(depth)
    removed = has_depth & ~keep
    veil = has_depth & ~(np.abs(depth - sharp) <= SURFACE_TOLERANCE * sharp)
    surface = has_depth & ~mixed_windows(ids)
    floor = surface & (ids == FLOOR)
    lowest, highest = window_surfaces(ids)
    box_veil = veil & (lowest == WALL) & (highest == BOX)
    print(f"flying pixels: {has_depth.sum()} points, {removed.sum()} removed; veil (off its "
          f"surface by > {100 * SURFACE_TOLERANCE:g} %) {veil.sum()} px, "
          f"{100.0 * removed[veil].mean():.2f} % of it removed (box-wall veil {box_veil.sum()} "
          f"px, {100.0 * removed[box_veil].mean():.2f} % removed); unblurred surfaces kept "
          f"{100.0 * keep[surface].mean():.2f} %; floor kept "
          f"{100.0 * keep[floor].mean():.2f} %, to {depth[floor & keep].max():.2f} m")

    xyz = RayGrid(CAMERA, CLOUD_STRIDE).points(depth).reshape(-1, 3).copy()
    sampled = removed[::CLOUD_STRIDE, ::CLOUD_STRIDE].ravel()
    kept_xyz = xyz[np.isfinite(xyz[:, 2]) & ~sampled]
    fig, (before, after) = plt.subplots(1, 2, figsize=FIGSIZE, sharey=True)
    side_view(before, kept_xyz, "tab:blue", "surface")
    side_view(before, xyz[sampled], "tab:red", "flying (removed by the filter)")
    style_side_view(before, f"before: {has_depth.sum():,} points, "
                            f"{removed.sum():,} flying (red)")
    before.legend(loc="upper right", fontsize=7, markerscale=6)
    side_view(after, kept_xyz, "tab:blue", "surface")
    style_side_view(after, f"after FlyingPixelFilter({MIN_ANGLE_DEG:g} deg): "
                           f"{removed.sum():,} removed")
    after.set_ylabel("")
    fig.suptitle("Rendered scene with known depth, not camera data (side view)\n"
                 f"box face at {BOX_DEPTH:g} m before a wall at {WALL_DEPTH:g} m, floor "
                 f"{CAMERA_HEIGHT:g} m below out to {FLOOR_RANGE:g} m, edges blurred over "
                 f"{BLUR_PX} px", fontsize=9)
    save(fig, "flying_pixels.png")


def lens_calibration() -> CameraCalibration:
    """Describe the VGA camera behind a barrel lens as its CameraInfo would."""
    k = (CAMERA.fx, 0.0, CAMERA.cx, 0.0, CAMERA.fy, CAMERA.cy, 0.0, 0.0, 1.0)
    p = (CAMERA.fx, 0.0, CAMERA.cx, 0.0, 0.0, CAMERA.fy, CAMERA.cy, 0.0, 0.0, 0.0, 1.0, 0.0)
    return CameraCalibration(width=CAMERA.width, height=CAMERA.height, k=k, d=LENS,
                             r=IDENTITY_3X3, p=p, distortion_model="plumb_bob")


def tilted_plane() -> tuple[np.ndarray, float]:
    """Return unit normal n and offset c of the plane n.X = c through (0, 0, PLANE_DISTANCE)."""
    tilt = math.radians(PLANE_TILT_DEG)
    normal = np.array([math.sin(tilt), 0.0, math.cos(tilt)])
    return normal, PLANE_DISTANCE * normal[2]


def render_raw_depth(cal: CameraCalibration) -> np.ndarray:
    """Depth a camera behind the lens reports: the z of the plane hit along each raw ray.

    The renderer runs backwards from the raw image, undistorting every pixel centre to
    its true ray, so no forward model of the lens has to be inverted.
    """
    v, u = np.mgrid[0:cal.height, 0:cal.width].astype(np.float64)
    pixels = np.stack([u, v], axis=-1).reshape(-1, 1, 2)
    k = np.asarray(cal.k, np.float64).reshape(3, 3)
    xy = cv2.undistortPoints(pixels, k, np.asarray(cal.d, np.float64),
                             criteria=UNDISTORT_CRITERIA).reshape(cal.height, cal.width, 2)
    normal, offset = tilted_plane()
    return (offset / (xy[..., 0] * normal[0] + xy[..., 1] * normal[1] + normal[2])).astype(
        np.float32)


def plane_errors(points: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Finite points of an (H, W, 3) cloud, their max distance to the plane (m) and / range."""
    xyz = points.reshape(-1, 3).astype(np.float64)
    xyz = xyz[np.isfinite(xyz).all(axis=1)]
    normal, offset = tilted_plane()
    distance = np.abs(xyz @ normal - offset)
    return xyz, float(distance.max()), float((distance / np.linalg.norm(xyz, axis=1)).max())


def top_view(ax: plt.Axes, xyz: np.ndarray, title: str) -> None:
    """Scatter the cloud from above with the true plane as a line through it."""
    sample = xyz[::PLANE_STRIDE]
    ax.scatter(sample[:, 0], sample[:, 2], s=8.0, c="tab:blue", marker=".", linewidths=0,
               label=f"cloud (every {PLANE_STRIDE}th point)")
    normal, offset = tilted_plane()
    x = np.linspace(-2.0, 2.0, 2)
    ax.plot(x, (offset - normal[0] * x) / normal[2], "r--", lw=0.8, label="true plane")
    ax.set_xlim(-1.6, 1.2)
    ax.set_ylim(1.5, 2.8)
    ax.set_xlabel("x right (m)")
    ax.set_ylabel("z forward (m)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=7, markerscale=2)


def rectification_figure() -> None:
    """Top view of the tilted plane's cloud back-projected without and with rectification."""
    cal = lens_calibration()
    raw = render_raw_depth(cal)
    pinhole, pin_max, pin_rel = plane_errors(RayGrid(calibration_intrinsics(cal)).points(raw))
    rect_depth = Rectifier().rectify(raw, cal)
    rect, rect_max, rect_rel = plane_errors(RayGrid(rectified_intrinsics(cal)).points(rect_depth))
    print(f"rectification: max point-to-plane error unrectified {1e3 * pin_max:.1f} mm "
          f"({100.0 * pin_rel:.2f} % of range, {len(pinhole)} points), rectified "
          f"{1e3 * rect_max:.2f} mm ({100.0 * rect_rel:.3f} % of range, {len(rect)} points)")
    fig, (left, right) = plt.subplots(1, 2, figsize=FIGSIZE, sharey=True)
    top_view(left, pinhole, f"raw image as pinhole: max error {1e3 * pin_max:.0f} mm "
                            f"({100.0 * pin_rel:.1f} % of range)")
    top_view(right, rect, f"after Rectifier: max error {1e3 * rect_max:.2f} mm "
                          f"({100.0 * rect_rel:.3f} % of range)")
    right.set_ylabel("")
    fig.suptitle("Rendered scene with known depth, not camera data (top view)\n"
                 f"plane {PLANE_DISTANCE:g} m ahead, turned {PLANE_TILT_DEG:g} deg about y, "
                 f"seen through a plumb_bob lens (k1={LENS[0]}, k2={LENS[1]}, p1={LENS[2]}, "
                 f"p2={LENS[3]})", fontsize=9)
    save(fig, "rectification.png")


def save(fig: plt.Figure, name: str) -> None:
    """Write the figure into docs/ and report its size, which the README budget bounds."""
    fig.tight_layout()
    out = DOCS / name
    fig.savefig(out, dpi=DPI)
    plt.close(fig)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB)")


def main() -> None:
    """Draw both figures."""
    flying_pixel_figure()
    rectification_figure()


if __name__ == "__main__":
    main()
