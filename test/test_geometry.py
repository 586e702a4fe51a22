"""Back-projection and intrinsics against analytic scenes."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
import numpy as np
import pytest

from depth_anything_ros.geometry.intrinsics import Intrinsics
from depth_anything_ros.geometry.rays import RayGrid
from depth_anything_ros.geometry.relative import relative_to_metric

# Deliberately asymmetric so a swapped fx/fy or cx/cy shows up.
K = Intrinsics(fx=520.0, fy=480.0, cx=310.25, cy=251.75, width=640, height=480)


def pixel_grid(intr, stride=1):
    v, u = np.mgrid[0:intr.height:stride, 0:intr.width:stride].astype(np.float64)
    return u, v


def test_fronto_parallel_plane_at_two_metres():
    depth = np.full((K.height, K.width), 2.0, np.float32)
    pts = RayGrid(K).points(depth)
    u, v = pixel_grid(K)
    assert pts.shape == (480, 640, 3) and pts.dtype == np.float32
    np.testing.assert_array_equal(pts[..., 2], 2.0)
    np.testing.assert_allclose(pts[..., 0], 2.0 * (u - K.cx) / K.fx, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(pts[..., 1], 2.0 * (v - K.cy) / K.fy, rtol=1e-6, atol=1e-6)
    # REP 103 optical frame: x grows to the right, y grows downwards.
    assert pts[240, 0, 0] < 0 < pts[240, 639, 0]
    assert pts[0, 320, 1] < 0 < pts[479, 320, 1]


def test_tilted_plane_points_lie_on_the_plane():
    # Plane n.P = c, tilted about both axes; depth along each ray is c / (n . ray).
    n = np.array([0.3, -0.2, 1.0])
    c = 3.0
    u, v = pixel_grid(K)
    rays = np.stack([(u - K.cx) / K.fx, (v - K.cy) / K.fy, np.ones_like(u)], axis=-1)
    depth = (c / (rays @ n)).astype(np.float32)
    assert depth.min() > 1.0 and np.ptp(depth) > 1.0  # really tilted, all in front
    pts = RayGrid(K).points(depth).astype(np.float64)
    np.testing.assert_allclose(pts @ n, c, rtol=2e-6)
    np.testing.assert_array_equal(pts[..., 2], depth)


@pytest.mark.parametrize("height,width", [(480, 640), (7, 5), (1, 1), (481, 639)])
@pytest.mark.parametrize("stride", [1, 2, 3, 4, 8])
def test_stride_samples_every_stride_th_pixel(height, width, stride):
    intr = Intrinsics(300.0, 300.0, width / 2, height / 2, width, height)
    depth = np.random.default_rng(stride).uniform(0.5, 5.0, (height, width)).astype(np.float32)
    full = RayGrid(intr).points(depth).copy()
    grid = RayGrid(intr, stride)
    pts = grid.points(depth)
    assert pts.shape[:2] == grid.shape == (math.ceil(height / stride), math.ceil(width / stride))
    if stride == 1:
        assert pts.shape[0] * pts.shape[1] == height * width
    np.testing.assert_array_equal(pts, full[::stride, ::stride])


def test_invalid_and_out_of_range_depth_is_nan():
    values = [np.nan, -1.0, 0.0, 0.2, 0.5, 3.0, 5.0, 5.01, np.inf, -np.inf]
    intr = Intrinsics(100.0, 100.0, 4.5, 0.0, len(values), 1)
    depth = np.array([values], np.float32)
    pts = RayGrid(intr).points(depth, min_range=0.5, max_range=5.0)
    valid = np.isfinite(pts).all(axis=-1)[0]
    # Both bounds are inclusive; everything else, NaN and +-Inf included, has no position.
    assert valid.tolist() == [False, False, False, False, True, True, True, False, False, False]
    assert np.isnan(pts[0, ~valid]).all()


def test_default_range_keeps_every_positive_finite_depth():
    intr = Intrinsics(100.0, 100.0, 1.0, 0.0, 4, 1)
    depth = np.array([[1e-6, 1e6, 0.0, np.inf]], np.float32)
    z = RayGrid(intr).points(depth)[0, :, 2]
    assert z[:2].tolist() == pytest.approx([1e-6, 1e6])
    assert np.isnan(z[2:]).all()


def test_output_buffer_is_reused_and_overwritten():
    grid = RayGrid(K, 2)
    first = grid.points(np.full((480, 640), 1.0, np.float32))
    second = grid.points(np.full((480, 640), 4.0, np.float32))
    assert first is second
    np.testing.assert_array_equal(second[..., 2], 4.0)


def test_float64_depth_is_accepted():
    depth = np.full((K.height, K.width), 1.5, np.float64)
    np.testing.assert_array_equal(RayGrid(K, 4).points(depth)[..., 2], 1.5)


def test_points_rejects_wrong_shape_and_inverted_range():
    grid = RayGrid(K)
    with pytest.raises(ValueError, match="shape"):
        grid.points(np.ones((240, 320), np.float32))
    with pytest.raises(ValueError, match="max_range"):
        grid.points(np.ones((480, 640), np.float32), min_range=5.0, max_range=1.0)
    with pytest.raises(ValueError, match="stride"):
        RayGrid(K, 0)
    with pytest.raises(ValueError, match="uncalibrated"):
        RayGrid(Intrinsics(0.0, 0.0, 0.0, 0.0, 640, 480))


def test_scaled_round_trip_and_pixel_centre_convention():
    half = K.scaled(320, 240)
    assert (half.width, half.height) == (320, 240)
    assert half.fx == pytest.approx(K.fx / 2) and half.fy == pytest.approx(K.fy / 2)
    # The image edge (-0.5) maps to the edge, so a centred principal point stays centred.
    centred = Intrinsics(500.0, 500.0, 319.5, 239.5, 640, 480)
    assert centred.scaled(320, 240).cx == pytest.approx(159.5)
    assert centred.scaled(320, 240).cy == pytest.approx(119.5)
    back = half.scaled(640, 480)
    for name in ("fx", "fy", "cx", "cy"):
        assert getattr(back, name) == pytest.approx(getattr(K, name), rel=1e-12)
    assert (back.width, back.height) == (640, 480)
    # Non-uniform scaling keeps the rays of corresponding pixel edges.
    odd = K.scaled(518, 686)
    assert (-0.5 - odd.cx) / odd.fx == pytest.approx((-0.5 - K.cx) / K.fx)
    assert (686 - 0.5 - odd.cy) / odd.fy == pytest.approx((480 - 0.5 - K.cy) / K.fy)
    with pytest.raises(ValueError):
        K.scaled(0, 480)


def test_from_fov_spans_the_image_edge_to_edge():
    intr = Intrinsics.from_fov(640, 480, 90.0)
    assert intr.fx == pytest.approx(320.0) and intr.fy == intr.fx
    assert (intr.cx, intr.cy) == (319.5, 239.5)
    left_edge_angle = math.degrees(math.atan((-0.5 - intr.cx) / intr.fx))
    assert left_edge_angle == pytest.approx(-45.0)
    for bad in (0.0, 180.0, -10.0, math.nan):
        with pytest.raises(ValueError, match="field of view"):
            Intrinsics.from_fov(640, 480, bad)


def test_from_k_and_matrices():
    k = (525.0, 0.0, 319.5, 0.0, 526.0, 239.5, 0.0, 0.0, 1.0)
    intr = Intrinsics.from_k(k, 640, 480)
    assert (intr.fx, intr.fy, intr.cx, intr.cy, intr.width, intr.height) == (
        525.0, 526.0, 319.5, 239.5, 640, 480)
    assert intr.k_matrix() == k
    assert intr.p_matrix() == (525.0, 0.0, 319.5, 0.0, 0.0, 526.0, 239.5, 0.0, 0.0, 0.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="9 values"):
        Intrinsics.from_k(k[:6], 640, 480)


@pytest.mark.parametrize("kwargs,reason", [
    ({"fx": 0.0}, "uncalibrated"),
    ({"fy": -5.0}, "fy"),
    ({"fx": math.inf}, "fx"),
    ({"cx": math.nan}, "cx"),
    ({"width": 0}, "width"),
    ({"height": -480}, "height"),
])
def test_validate_names_the_bad_value(kwargs, reason):
    values = {"fx": 500.0, "fy": 500.0, "cx": 320.0, "cy": 240.0, "width": 640, "height": 480}
    values.update(kwargs)
    with pytest.raises(ValueError, match=reason):
        Intrinsics(**values).validate()


def test_relative_to_metric():
    inv = np.array([[1.0, 0.5, 0.0, -1.0, np.nan, 4.0]], np.float32)
    depth = relative_to_metric(inv, scale=0.5, shift=0.0)
    assert depth.dtype == np.float32
    np.testing.assert_allclose(depth[0, [0, 1, 5]], [2.0, 4.0, 0.5], rtol=1e-6)
    assert np.isnan(depth[0, 2:5]).all()  # denominator 0, negative, NaN
    shifted = relative_to_metric(inv, scale=0.5, shift=0.25)
    np.testing.assert_allclose(shifted[0, [0, 2]], [1 / 0.75, 4.0], rtol=1e-6)
    assert np.isnan(shifted[0, 3])  # -0.5 + 0.25 < 0


depth_maps = arrays(
    np.float32, st.tuples(st.integers(1, 12), st.integers(1, 12)),
    elements=st.one_of(st.floats(-2.0, 50.0, width=32),
                       st.sampled_from([np.nan, np.inf, -np.inf, 0.0])))


@settings(max_examples=150, deadline=None)
@given(depth=depth_maps,
       fx=st.floats(20.0, 2000.0), fy=st.floats(20.0, 2000.0),
       cx=st.floats(-50.0, 50.0), cy=st.floats(-50.0, 50.0),
       stride=st.integers(1, 4),
       min_range=st.floats(0.0, 5.0), span=st.floats(0.0, 60.0))
def test_geometry_invariants(depth, fx, fy, cx, cy, stride, min_range, span):
    h, w = depth.shape
    intr = Intrinsics(fx, fy, cx, cy, w, h)
    max_range = min_range + span
    pts = RayGrid(intr, stride).points(depth, min_range, max_range)
    sample = depth[::stride, ::stride]
    valid = np.isfinite(sample) & (sample > 0) & (sample >= min_range) & (sample <= max_range)
    assert pts.shape == sample.shape + (3,)
    np.testing.assert_array_equal(np.isnan(pts), np.repeat(~valid[..., None], 3, axis=-1))
    np.testing.assert_array_equal(pts[..., 2][valid], sample[valid])
    u, v = pixel_grid(intr, stride)
    np.testing.assert_allclose(pts[..., 0][valid], sample[valid] * ((u - cx) / fx)[valid],
                               rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(pts[..., 1][valid], sample[valid] * ((v - cy) / fy)[valid],
                               rtol=1e-5, atol=1e-4)
