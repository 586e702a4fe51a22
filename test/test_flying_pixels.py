"""Flying-pixel removal on rendered scenes: the veil goes, walls, box faces and floors stay.

The scenes are planes rendered per pixel through the VGA camera below, and the network's
smoothing of depth edges is modelled as a 6 x 6 box filter: across a 1.5 m step that is a ramp
of five intermediate depths, which back-projects to the veil a voxel layer would mark.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from depth_anything_ros.geometry.flying_pixels import DEFAULT_MIN_ANGLE_DEG, FlyingPixelFilter
from depth_anything_ros.geometry.intrinsics import Intrinsics

CAMERA = Intrinsics(fx=525.0, fy=525.0, cx=319.5, cy=239.5, width=640, height=480)
CAMERA_HEIGHT = 0.5
FLOOR_RANGE = 10.0
WALL_DEPTH = 4.0
BOX_DEPTH = 2.5
# Half extents of the box face in metres: about 202 x 151 pixels at 2.5 m.
BOX_HALF_WIDTH = 0.48
BOX_HALF_HEIGHT = 0.36
BLUR_PX = 6
# A pixel belongs to a surface when its blurred depth is within 1 % of that surface's depth.
SURFACE_TOLERANCE = 0.01


def _rays(camera: Intrinsics = CAMERA) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel ray slopes x = (u-cx)/fx and y = (v-cy)/fy, full image shape."""
    x = (np.arange(camera.width) - camera.cx) / camera.fx
    y = (np.arange(camera.height) - camera.cy) / camera.fy
    return np.broadcast_arrays(x[np.newaxis, :], y[:, np.newaxis])


def _plane_depth(normal: tuple[float, float, float], offset: float,
                 camera: Intrinsics = CAMERA) -> np.ndarray:
    """Depth z where each ray (x, y, 1) meets the plane n.P = offset; NaN where it never does."""
    x, y = _rays(camera)
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = offset / (normal[0] * x + normal[1] * y + normal[2])
    depth[~(np.isfinite(depth) & (depth > 0.0))] = np.nan
    return depth


def _box_scene() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Box face in front of a wall, edges blurred; labels face, wall and veil pixels."""
    wall = _plane_depth((0.0, 0.0, 1.0), WALL_DEPTH)
    face = _plane_depth((0.0, 0.0, 1.0), BOX_DEPTH)
    x, y = _rays()
    on_face = (np.abs(x * face) <= BOX_HALF_WIDTH) & (np.abs(y * face) <= BOX_HALF_HEIGHT)
    sharp = np.where(on_face, face, wall).astype(np.float32)
    depth = cv2.blur(sharp, (BLUR_PX, BLUR_PX), borderType=cv2.BORDER_REPLICATE)
    labels = {"face": np.abs(depth - BOX_DEPTH) <= SURFACE_TOLERANCE * BOX_DEPTH,
              "wall": np.abs(depth - WALL_DEPTH) <= SURFACE_TOLERANCE * WALL_DEPTH}
    labels["veil"] = ~(labels["face"] | labels["wall"])
    return depth, labels


def _floor_scene(beyond: float = np.nan) -> np.ndarray:
    """Level camera 0.5 m above a floor that ends at 10 m; ``beyond`` fills the rest (sky)."""
    floor = _plane_depth((0.0, 1.0, 0.0), CAMERA_HEIGHT)
    floor[~(floor <= FLOOR_RANGE)] = beyond
    return floor.astype(np.float32)


def _tilted_plane(sign: float) -> np.ndarray:
    """Plane through (0, 0, 3 m) whose normal is turned 60 deg from the optical axis."""
    tilt = np.radians(60.0)
    normal = (0.0, sign * np.sin(tilt), np.cos(tilt))
    return _plane_depth(normal, 3.0 * normal[2]).astype(np.float32)


def _touches(mask: np.ndarray) -> np.ndarray:
    """Pixels with at least one 4-neighbour in ``mask``."""
    out = np.zeros_like(mask)
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    return out


def _percent(values: np.ndarray) -> float:
    return 100.0 * float(np.mean(values))


def test_box_edge_veil_is_removed_and_surfaces_are_kept():
    depth, labels = _box_scene()
    keep = FlyingPixelFilter().keep_mask(depth, CAMERA)
    removed_veil = _percent(~keep[labels["veil"]])
    kept_face = _percent(keep[labels["face"]])
    kept_wall = _percent(keep[labels["wall"]])
    print(f"\nbox scene: veil removed {removed_veil:.2f} % of {labels['veil'].sum()} px, "
          f"face kept {kept_face:.2f} %, wall kept {kept_wall:.2f} %")
    assert labels["veil"].sum() > 3000  # five ramp pixels along each of ~700 px of border
    assert removed_veil >= 95.0
    assert kept_face >= 99.0
    assert kept_wall >= 99.0


def test_floor_is_kept_out_to_ten_metres():
    depth = _floor_scene()
    floor = np.isfinite(depth)
    keep = FlyingPixelFilter().keep_mask(depth, CAMERA)
    kept_floor = _percent(keep[floor])
    print(f"\nfloor scene: floor kept {kept_floor:.2f} % of {floor.sum()} px, "
          f"farthest {np.nanmax(depth):.2f} m")
    assert np.nanmax(depth) > 0.99 * FLOOR_RANGE
    assert kept_floor >= 99.0
    assert not keep[~floor].any()


def test_floor_cut_moves_to_where_its_angle_crosses_the_threshold():
    """At 4 deg the floor is cut where atan(h/z) = 4 deg, 7.15 m, on the optical axis."""
    depth = _floor_scene()
    keep = FlyingPixelFilter(min_angle_deg=4.0).keep_mask(depth, CAMERA)
    centre = depth[:, int(CAMERA.cx)]
    farthest_kept = np.nanmax(np.where(keep[:, int(CAMERA.cx)], centre, np.nan))
    cut = CAMERA_HEIGHT / np.tan(np.radians(4.0))
    row_spacing = cut ** 2 / (CAMERA.fy * CAMERA_HEIGHT)  # dz/dv of the floor at the cut
    print(f"\nfloor at 4 deg: farthest kept {farthest_kept:.2f} m, geometry says {cut:.2f} m")
    assert abs(farthest_kept - cut) <= 1.5 * row_spacing


def test_a_larger_threshold_removes_more_and_only_more():
    depth, labels = _box_scene()
    removed = {}
    previous = np.ones(depth.shape, np.bool_)
    for angle in (1.0, DEFAULT_MIN_ANGLE_DEG, 3.0):
        keep = FlyingPixelFilter(min_angle_deg=angle).keep_mask(depth, CAMERA).copy()
        assert not (keep & ~previous).any(), f"{angle} deg keeps a pixel a lower one removed"
        removed[angle] = _percent(~keep[labels["veil"]])
        previous = keep
    print(f"\nveil removed by threshold: {removed}")
    assert removed[1.0] < 50.0 < removed[DEFAULT_MIN_ANGLE_DEG]
    assert removed[3.0] > removed[DEFAULT_MIN_ANGLE_DEG]


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_a_plane_tilted_sixty_degrees_is_fully_kept(sign):
    depth = _tilted_plane(sign)
    assert np.isfinite(depth).all()
    assert np.nanmax(depth) > 10.0  # reaches grazing rays: about 5 deg at the far edge
    assert FlyingPixelFilter().keep_mask(depth, CAMERA).all()


def test_nan_pixels_stay_removed_and_spare_a_surface_around_them():
    rng = np.random.default_rng(7)
    depth = _tilted_plane(1.0)
    holes = rng.random(depth.shape) < 0.1
    holes[100:140, 200:260] = True
    holes[:, 400] = True
    depth[holes] = np.nan
    keep = FlyingPixelFilter().keep_mask(depth, CAMERA)
    assert not keep[holes].any()
    assert keep[~holes].all()


def test_nan_holes_change_nothing_but_their_own_neighbourhood():
    depth, labels = _box_scene()
    clean = FlyingPixelFilter().keep_mask(depth, CAMERA).copy()
    rng = np.random.default_rng(11)
    holes = rng.random(depth.shape) < 0.03
    holes[200:260, 200:240] = True  # across the box's left border and its ramp
    holes[:, 100] = True
    depth[holes] = np.nan
    keep = FlyingPixelFilter().keep_mask(depth, CAMERA)
    assert not keep[holes].any()
    untouched = ~holes & ~_touches(holes)
    np.testing.assert_array_equal(keep[untouched], clean[untouched])
    surface_by_hole = ~holes & _touches(holes) & ~labels["veil"] & ~_touches(labels["veil"])
    assert surface_by_hole.sum() > 10000
    assert keep[surface_by_hole].all()


def test_infinite_depth_passes_through_and_does_not_cut_the_floor():
    depth = _floor_scene(beyond=np.inf)
    depth[0, :10] = -np.inf
    keep = FlyingPixelFilter().keep_mask(depth, CAMERA)
    assert keep.all()


def test_remove_writes_nan_where_the_mask_drops():
    depth, _ = _box_scene()
    depth[5, 5] = np.nan
    flying_filter = FlyingPixelFilter()
    out = np.empty_like(depth)
    assert flying_filter.remove(depth, CAMERA, out) is out
    keep = flying_filter.keep_mask(depth, CAMERA)
    np.testing.assert_array_equal(out[keep], depth[keep])
    assert np.isnan(out[~keep]).all()
    assert (~keep).sum() > 3000
    in_place = depth.copy()
    flying_filter.remove(in_place, CAMERA, in_place)
    np.testing.assert_array_equal(in_place, out)


def test_buffers_are_reused_and_follow_size_and_intrinsics():
    depth, _ = _box_scene()
    flying_filter = FlyingPixelFilter()
    first = flying_filter.keep_mask(depth, CAMERA)
    assert flying_filter.keep_mask(depth, CAMERA) is first
    wide = Intrinsics(fx=200.0, fy=200.0, cx=319.5, cy=239.5, width=640, height=480)
    np.testing.assert_array_equal(flying_filter.keep_mask(depth, wide),
                                  FlyingPixelFilter().keep_mask(depth, wide))
    half = CAMERA.scaled(320, 240)
    small = cv2.resize(depth, (320, 240), interpolation=cv2.INTER_NEAREST)
    np.testing.assert_array_equal(flying_filter.keep_mask(small, half),
                                  FlyingPixelFilter().keep_mask(small, half))
    assert flying_filter.keep_mask(small, half).shape == (240, 320)


def test_unusable_inputs_are_refused():
    depth, _ = _box_scene()
    flying_filter = FlyingPixelFilter()
    with pytest.raises(ValueError, match="intrinsics are for"):
        flying_filter.keep_mask(depth[:, :600], CAMERA)
    with pytest.raises(ValueError, match="float32"):
        flying_filter.keep_mask(depth.astype(np.float64), CAMERA)
    with pytest.raises(ValueError, match="out must be"):
        flying_filter.remove(depth, CAMERA, np.empty(depth.shape, np.float64))
    for angle in (0.0, 90.0, float("nan")):
        with pytest.raises(ValueError, match="min_angle_deg"):
            FlyingPixelFilter(min_angle_deg=angle)
