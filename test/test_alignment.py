"""Metric alignment on rendered scenes with exactly known depth (test/depth_scenes.py).

A relative model's "output" is the true inverse depth times (1 + 1 % Gaussian noise) per
pixel, the network's own relative error, mapped by a known affine map; a metric model's is
the true depth times the same noise over a known scale. References carry 1 % noise of their
own. Accuracy is the median relative depth error over all valid pixels of the scene after
the fitted map is applied to the whole prediction. The network noise alone gives 0.67 %
there (the median of |N(0, 1 %)|), so a 1 % bound leaves a third of a percent for the fit.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from depth_anything_ros.geometry.alignment import (
    AlignmentFilter, DEGENERATE, fit, FitRefused, NON_POSITIVE_SCALE, Normalization,
    normalization, RESIDUAL_TOO_LARGE, ScaleAligner, ScaleFit, TOO_FEW_POINTS)
from depth_anything_ros.geometry.intrinsics import Intrinsics
from depth_anything_ros.geometry.reference import (
    depth_image_samples, GROUND_MIN_ANGLE_DEG, GroundPlane, MAX_SAMPLES, point_samples,
    pose_from_extrinsic, REFERENCE_ASPECT, REFERENCE_EMPTY, REFERENCE_EXTRINSIC,
    REFERENCE_NON_FINITE, ReferenceSamples, UnusableReference)
import depth_scenes as ds

H, W = 480, 640
SCALE, SHIFT = 0.08, -0.04  # metric inverse depth = SCALE * relative output + SHIFT
METRIC_SCALE = 1.25  # true depth = METRIC_SCALE * metric output
NOISE = 0.01
CLEAN_BOUND, OUTLIER_BOUND = 0.01, 0.02
MIN_POINTS, MAX_RESIDUAL = 30, 0.1
CAMERA_YAW_DEG = 20.0  # so that no wall of the room faces the camera squarely
# LiDAR 10 cm to the camera's right, REP 103 body axes (x forward, y left, z up), yawed 15
# degrees to the left: p_cam = LIDAR_ROTATION @ p_lidar + LIDAR_POSITION.
LIDAR_POSITION = np.array([0.10, 0.0, 0.0])
LIDAR_YAW_DEG = 15.0
GROUND_HEIGHT, GROUND_PITCH_DEG = 0.5, 10.0


def _lidar_rotation() -> np.ndarray:
    axes = np.stack([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]], axis=1)
    yaw = math.radians(LIDAR_YAW_DEG)
    about_z = np.array([[math.cos(yaw), -math.sin(yaw), 0.0],
                        [math.sin(yaw), math.cos(yaw), 0.0], [0.0, 0.0, 1.0]])
    return axes @ about_z


def _quaternion(rotation: np.ndarray) -> list[float]:
    """Return [qx, qy, qz, qw] of a rotation matrix (valid away from 180-degree turns)."""
    r = rotation
    w = math.sqrt(max(0.0, 1.0 + r[0, 0] + r[1, 1] + r[2, 2])) / 2.0
    x = math.copysign(math.sqrt(max(0.0, 1.0 + r[0, 0] - r[1, 1] - r[2, 2])) / 2.0,
                      r[2, 1] - r[1, 2])
    y = math.copysign(math.sqrt(max(0.0, 1.0 - r[0, 0] + r[1, 1] - r[2, 2])) / 2.0,
                      r[0, 2] - r[2, 0])
    z = math.copysign(math.sqrt(max(0.0, 1.0 - r[0, 0] - r[1, 1] + r[2, 2])) / 2.0,
                      r[1, 0] - r[0, 1])
    return [x, y, z, w]


LIDAR_EXTRINSIC = [*LIDAR_POSITION.tolist(), *_quaternion(_lidar_rotation())]


@functools.lru_cache(maxsize=None)
def _view(name: str, width: int = W) -> np.ndarray:
    """Return the true depth the camera sees of a scene, at ``width`` (same field of view)."""
    shapes = {"room": ds.room(), "corridor": ds.corridor()}[name]
    intrinsics = ds.VGA.scaled(width, width * H // W)
    depth, _ = ds.render(shapes, intrinsics, ds.camera_rotation(yaw_deg=CAMERA_YAW_DEG))
    depth.setflags(write=False)
    return depth


@functools.lru_cache(maxsize=None)
def _ground_view(roll_deg: float = 0.0, boxes: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Return depth and shape index (0 floor, 1 wall, 2.. boxes) of the floor scene."""
    shapes = ds.floor_with_boxes(GROUND_HEIGHT)
    if not boxes:
        shapes = shapes[:2]
    rotation = ds.camera_rotation(pitch_deg=GROUND_PITCH_DEG, roll_deg=roll_deg)
    return ds.render(shapes, rotation=rotation)


def _relative(depth: np.ndarray, rng: np.random.Generator, noise: float = NOISE) -> np.ndarray:
    inverse = (1.0 + noise * rng.standard_normal(depth.shape)) / depth
    return ((inverse - SHIFT) / SCALE).astype(np.float32)


def _metric(depth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return (depth * (1.0 + NOISE * rng.standard_normal(depth.shape)) / METRIC_SCALE).astype(
        np.float32)


def _error(fitted: ScaleFit, prediction: np.ndarray, truth: np.ndarray,
           where: np.ndarray | None = None) -> float:
    """Return the median relative depth error over ``where`` (default: all valid pixels)."""
    depth = fitted.depth(prediction)
    where = np.isfinite(truth) if where is None else where
    error = np.abs(depth[where] - truth[where]) / truth[where]
    return float(np.median(np.where(np.isfinite(error), error, np.inf)))


def _corrupt(values: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Replace ``fraction`` of the values by outliers, a third each of three kinds.

    Random depths (0.3-20 m: sensor junk), 2-4x too far (LiDAR through glass) and 0.3-0.7x
    too near (a foreground edge mixed into the background's pixel).
    """
    values = values.copy()
    chosen = rng.permutation(values.size)[:int(round(fraction * values.size))]
    junk, glass, edge = np.array_split(chosen, 3)
    values[junk] = rng.uniform(0.3, 20.0, junk.size)
    values[glass] *= rng.uniform(2.0, 4.0, glass.size)
    values[edge] *= rng.uniform(0.3, 0.7, edge.size)
    return values


def _depth_reference(truth: np.ndarray, rng: np.random.Generator, outliers: float = 0.0,
                     fraction: float = 0.005) -> np.ndarray:
    """Return a depth image valid at ``fraction`` of its pixels, 0 (no data) elsewhere."""
    reference = np.zeros(truth.shape, np.float32)
    pixels = rng.choice(truth.size, int(fraction * truth.size), replace=False)
    values = truth.ravel()[pixels] * (1.0 + NOISE * rng.standard_normal(pixels.size))
    reference.ravel()[pixels] = _corrupt(values, outliers, rng)
    return reference


def _lidar_cloud(rng: np.random.Generator, outliers: float = 0.0) -> np.ndarray:
    """Return a 32-beam scan of the room in the LiDAR frame, 5 % of returns missing (NaN)."""
    elevation, azimuth = np.meshgrid(np.radians(np.linspace(-16.0, 16.0, 32)),
                                     np.radians(np.linspace(-75.0, 75.0, 750)), indexing="ij")
    directions = np.stack([np.cos(elevation) * np.cos(azimuth),
                           np.cos(elevation) * np.sin(azimuth), np.sin(elevation)],
                          axis=-1).reshape(-1, 3)
    camera = ds.camera_rotation(yaw_deg=CAMERA_YAW_DEG)
    ranges, _ = ds.cast(ds.room(), camera @ LIDAR_POSITION,
                        directions @ (camera @ _lidar_rotation()).T)
    ranges = _corrupt(ranges * (1.0 + NOISE * rng.standard_normal(ranges.size)), outliers, rng)
    points = directions * ranges[:, np.newaxis]
    points[rng.random(ranges.size) < 0.05] = np.nan
    return points.astype(np.float32)


def _aligner(inverse: bool = True, time_constant_s: float = 1.0,
             change_ratio: float = 0.15) -> ScaleAligner:
    return ScaleAligner(inverse=inverse, min_points=MIN_POINTS, max_residual=MAX_RESIDUAL,
                        time_constant_s=time_constant_s, change_ratio=change_ratio)


def _plain_least_squares(prediction: np.ndarray, samples: ReferenceSamples) -> ScaleFit:
    """Return the non-robust relative-error fit over all samples, to show outliers matter."""
    p = prediction[samples.rows, samples.cols].astype(np.float64)
    d = samples.depth.astype(np.float64)
    (scale, shift), *_ = np.linalg.lstsq(np.stack([d * p, d], axis=1), np.ones_like(d),
                                         rcond=None)
    return ScaleFit(scale=scale, shift=shift, inverse=True, inliers=d.size, residual=0.0)


# --- Accuracy per source ------------------------------------------------------------------

@pytest.mark.parametrize("outliers", [0.0, 0.3])
@pytest.mark.parametrize("width", [W, W // 2])
@pytest.mark.parametrize("scene", ["room", "corridor"])
def test_depth_image_reference_aligns_the_whole_view(scene, width, outliers):
    rng = np.random.default_rng(1)
    truth = _view(scene)
    prediction = _relative(truth, rng)
    samples = depth_image_samples(_depth_reference(_view(scene, width), rng, outliers), H, W)
    fitted = _aligner().update(prediction, samples, None)
    assert _error(fitted, prediction, truth) <= (OUTLIER_BOUND if outliers else CLEAN_BOUND)
    if outliers:
        # The outliers are harmful: a plain least-squares fit over all samples is far off.
        assert _error(_plain_least_squares(prediction, samples), prediction, truth) > 0.05


def test_depth_image_reference_recovers_the_affine_map():
    rng = np.random.default_rng(2)
    truth = _view("room")
    prediction = _relative(truth, rng)
    fitted = _aligner().update(prediction, depth_image_samples(
        _depth_reference(truth, rng), H, W), None)
    # The room's inverse depths lie in 0.17-0.52 /m; the map must be right across them.
    assert fitted.scale == pytest.approx(SCALE, rel=0.01)
    assert fitted.shift == pytest.approx(SHIFT, abs=0.002)
    assert fitted.inverse and fitted.inliers >= 0.95 * (0.005 * H * W)
    assert fitted.residual == pytest.approx(0.0067 * math.sqrt(2), rel=0.2)


@pytest.mark.parametrize("outliers", [0.0, 0.3])
def test_lidar_cloud_through_the_extrinsic_aligns_the_whole_view(outliers):
    rng = np.random.default_rng(3)
    truth = _view("room")
    prediction = _relative(truth, rng)
    rotation, translation = pose_from_extrinsic(LIDAR_EXTRINSIC)
    samples = point_samples(_lidar_cloud(rng, outliers), rotation, translation, ds.VGA)
    assert len(samples) == MAX_SAMPLES
    fitted = _aligner().update(prediction, samples, None)
    assert _error(fitted, prediction, truth) <= (OUTLIER_BOUND if outliers else CLEAN_BOUND)
    if outliers:
        assert _error(_plain_least_squares(prediction, samples), prediction, truth) > 0.05


def test_lidar_cloud_without_the_extrinsic_does_not_align():
    """The extrinsic matters: the same cloud taken as if in the camera frame lands nowhere."""
    with pytest.raises(UnusableReference) as refused:
        point_samples(_lidar_cloud(np.random.default_rng(3)), np.eye(3), np.zeros(3), ds.VGA)
    assert refused.value.kind == REFERENCE_EMPTY


@pytest.mark.parametrize("inverse", [True, False])
def test_ground_plane_aligns_floor_and_boxes(inverse):
    truth, shape = _ground_view()
    _, bare_shape = _ground_view(boxes=False)
    bare_floor = bare_shape == 0
    covered = np.count_nonzero(bare_floor & (shape >= 2)) / np.count_nonzero(bare_floor)
    assert 0.28 <= covered <= 0.35  # the scene is what the test claims
    ground = GroundPlane(GROUND_HEIGHT, GROUND_PITCH_DEG, 0.0)
    samples = ground.samples(ds.VGA)
    assert 0.25 <= np.mean(shape[samples.rows, samples.cols] >= 2) <= 0.35
    rng = np.random.default_rng(4)
    prediction = _relative(truth, rng) if inverse else _metric(truth, rng)
    fitted = _aligner(inverse).update(prediction, samples, None)
    for where in (shape == 0, shape >= 2):
        assert _error(fitted, prediction, truth, where) <= OUTLIER_BOUND


@pytest.mark.parametrize("outliers", [0.0, 0.3])
def test_metric_model_is_aligned_by_scale_alone(outliers):
    rng = np.random.default_rng(5)
    truth = _view("corridor")
    prediction = _metric(truth, rng)
    samples = depth_image_samples(_depth_reference(truth, rng, outliers), H, W)
    fitted = _aligner(inverse=False).update(prediction, samples, None)
    assert not fitted.inverse and fitted.shift == 0.0
    assert fitted.scale == pytest.approx(METRIC_SCALE, rel=0.005)
    assert _error(fitted, prediction, truth) <= (OUTLIER_BOUND if outliers else CLEAN_BOUND)


# --- Ground plane geometry and its conventions ----------------------------------------------

@pytest.mark.parametrize("roll_deg", [-8.0, 0.0, 8.0])
def test_ground_plane_is_the_floor_a_mounted_camera_sees(roll_deg):
    truth, shape = _ground_view(roll_deg, boxes=False)
    depth = GroundPlane(GROUND_HEIGHT, GROUND_PITCH_DEG, roll_deg).depth(ds.VGA)
    both = np.isfinite(depth) & (shape == 0)
    assert np.count_nonzero(both) > 0.3 * H * W
    np.testing.assert_allclose(depth[both], truth[both], rtol=1e-5)
    # Every pixel with a floor depth sees the floor; none is the wall above the horizon.
    assert not np.any(np.isfinite(depth) & (shape != 0))


def test_positive_roll_lowers_the_right_side():
    rotation = ds.camera_rotation(pitch_deg=GROUND_PITCH_DEG, roll_deg=8.0)
    assert rotation[1, 0] > 0.1  # the camera's +x axis points partly down (scene +y)
    depth = GroundPlane(GROUND_HEIGHT, GROUND_PITCH_DEG, 8.0).depth(ds.VGA)
    assert depth[400, W - 1] < 0.9 * depth[400, 0]  # floor nearer on the right
    first_floor_row = np.argmax(np.isfinite(depth), axis=0)
    assert first_floor_row[W - 1] < first_floor_row[0] - 50  # horizon higher on the right
    # The opposite sign is a different floor, so the convention is checked, not assumed.
    truth, shape = _ground_view(8.0, boxes=False)
    mirrored = GroundPlane(GROUND_HEIGHT, GROUND_PITCH_DEG, -8.0).depth(ds.VGA)
    both = np.isfinite(mirrored) & (shape == 0)
    assert np.max(np.abs(mirrored[both] / truth[both] - 1.0)) > 0.2


def test_pitch_is_the_optical_axis_angle_below_the_horizon():
    centred = Intrinsics(fx=500.0, fy=500.0, cx=320.0, cy=240.0, width=W, height=H)
    depth = GroundPlane(1.5, 30.0, 0.0).depth(centred)
    assert depth[240, 320] == pytest.approx(1.5 / math.sin(math.radians(30.0)), rel=1e-6)


def test_grazing_floor_is_left_out():
    centred = Intrinsics(fx=500.0, fy=500.0, cx=320.0, cy=240.0, width=W, height=H)
    depth = GroundPlane(1.0, 0.0, 0.0).depth(centred)
    limit = 240 + 500.0 * math.tan(math.radians(GROUND_MIN_ANGLE_DEG))  # 283.7
    assert np.isnan(depth[:284, 320]).all()
    assert np.isfinite(depth[284:, 320]).all()
    assert depth[284, 320] == pytest.approx(500.0 / (284 - 240), rel=1e-6)
    assert 283 < limit < 284


def test_ground_samples_are_an_even_cached_grid():
    ground = GroundPlane(GROUND_HEIGHT, GROUND_PITCH_DEG, 0.0)
    samples = ground.samples(ds.VGA)
    assert 0.8 * MAX_SAMPLES <= len(samples) <= MAX_SAMPLES
    depth = ground.depth(ds.VGA)
    np.testing.assert_array_equal(samples.depth, depth[samples.rows, samples.cols])
    assert np.isfinite(samples.depth).all()
    assert samples.cols.min() < 10 and samples.cols.max() > W - 10
    assert samples.rows.max() > H - 10
    assert ground.samples(ds.VGA) is samples and ground.depth(ds.VGA) is depth
    assert not depth.flags.writeable
    half = ground.samples(ds.VGA.scaled(W // 2, H // 2))
    assert half.rows.max() < H // 2


def test_ground_out_of_view_is_refused():
    with pytest.raises(UnusableReference) as refused:
        GroundPlane(1.0, -40.0, 0.0).samples(ds.VGA)
    assert refused.value.kind == REFERENCE_EMPTY
    with pytest.raises(ValueError):
        GroundPlane(0.0, 10.0, 0.0)


# --- Depth image references -------------------------------------------------------------

def test_half_resolution_pixels_map_to_the_nearest_output_pixel():
    reference = np.zeros((240, 320), np.float32)
    reference[0, 0], reference[100, 200], reference[239, 319] = 1.0, 2.0, 3.0
    samples = depth_image_samples(reference, H, W)
    # Reference pixel i covers output pixels 2i and 2i+1; its centre is 2i + 0.5.
    for row, col, depth in zip(samples.rows, samples.cols, samples.depth):
        source = {1.0: (0, 0), 2.0: (100, 200), 3.0: (239, 319)}[float(depth)]
        assert abs(row - (2 * source[0] + 0.5)) == 0.5
        assert abs(col - (2 * source[1] + 0.5)) == 0.5
    same = depth_image_samples(reference, 240, 320)
    assert sorted(zip(same.rows, same.cols)) == [(0, 0), (100, 200), (239, 319)]


def test_reference_pixel_centres_map_to_output_pixel_centres():
    # At a third of the resolution, reference pixel i's centre is output pixel 3i + 1.
    reference = np.zeros((100, 200), np.float32)
    reference[0, 0], reference[50, 150] = 1.0, 2.0
    samples = depth_image_samples(reference, 300, 600)
    assert sorted(zip(samples.rows.tolist(), samples.cols.tolist())) == [(1, 1), (151, 451)]
    # At twice the resolution, reference pixel i's centre is at i / 2 - 0.25.
    reference = np.zeros((960, 1280), np.float32)
    reference[1, 2], reference[3, 5] = 1.0, 2.0
    samples = depth_image_samples(reference, H, W)
    assert sorted(zip(samples.rows.tolist(), samples.cols.tolist())) == [(0, 1), (1, 2)]


@pytest.mark.parametrize("shape, output", [((240, 320), (480, 640)), ((180, 320), (360, 640)),
                                           ((241, 320), (480, 640)), ((480, 853), (360, 640))])
def test_reference_of_the_same_aspect_up_to_rounding_is_accepted(shape, output):
    samples = depth_image_samples(np.ones(shape, np.float32), *output)
    assert len(samples) > 0
    assert samples.rows.max() <= output[0] - 1 and samples.cols.max() <= output[1] - 1


@pytest.mark.parametrize("shape", [(480, 480), (240, 300), (256, 320)])
def test_reference_of_another_aspect_is_refused(shape):
    with pytest.raises(UnusableReference) as refused:
        depth_image_samples(np.ones(shape, np.float32), H, W)
    assert refused.value.kind == REFERENCE_ASPECT
    assert f"{shape[1]}x{shape[0]}" in str(refused.value) and "640x480" in str(refused.value)


def test_dense_reference_is_subsampled_evenly_and_repeatably():
    truth = _view("room")
    first = depth_image_samples(truth, H, W)
    second = depth_image_samples(truth.copy(), H, W)
    assert len(first) == MAX_SAMPLES
    np.testing.assert_array_equal(first.rows, second.rows)
    np.testing.assert_array_equal(first.cols, second.cols)
    assert first.rows.min() < 10 and first.rows.max() > H - 10
    assert first.cols.min() < 10 and first.cols.max() > W - 10
    np.testing.assert_array_equal(first.depth, truth[first.rows, first.cols])


def test_sparse_pattern_a_grid_would_miss_is_scanned_in_full():
    reference = np.zeros((H, W), np.float32)
    reference[1::4, ::8] = 2.0  # rows the 4-pixel grid of a dense reference skips
    samples = depth_image_samples(reference, H, W)
    assert len(samples) == MAX_SAMPLES
    assert np.all(samples.rows % 4 == 1) and np.all(samples.cols % 8 == 0)


def test_invalid_depths_are_no_data():
    reference = np.array([[0.0, -1.0, np.nan, np.inf], [2.0, 0.0, 0.0, 0.0],
                          [0.0, 0.0, 0.0, 0.0]], np.float32)
    samples = depth_image_samples(reference, 3, 4)
    assert (samples.rows.tolist(), samples.cols.tolist(), samples.depth.tolist()) == (
        [1], [0], [2.0])
    with pytest.raises(UnusableReference) as refused:
        depth_image_samples(np.full((H, W), np.nan, np.float32), H, W)
    assert refused.value.kind == REFERENCE_EMPTY


# --- Point cloud references -------------------------------------------------------------

def test_lidar_extrinsic_maps_the_lidar_axes_into_the_optical_frame():
    rotation, translation = pose_from_extrinsic(LIDAR_EXTRINSIC)
    np.testing.assert_allclose(rotation, _lidar_rotation(), atol=1e-12)
    np.testing.assert_allclose(translation, LIDAR_POSITION)
    yaw = math.radians(LIDAR_YAW_DEG)
    # LiDAR forward, yawed 15 degrees to its left, is camera z with a little -x.
    np.testing.assert_allclose(rotation @ [1.0, 0.0, 0.0], [-math.sin(yaw), 0.0, math.cos(yaw)],
                               atol=1e-12)
    np.testing.assert_allclose(rotation @ [0.0, 0.0, 1.0], [0.0, -1.0, 0.0], atol=1e-12)


def test_cloud_keeps_the_nearest_point_of_each_pixel():
    # Three points on the ray of pixel (row 240, col 400), and one on pixel (100, 100).
    ray = np.array([(400 - ds.VGA.cx) / ds.VGA.fx, (240 - ds.VGA.cy) / ds.VGA.fy, 1.0])
    other = np.array([(100 - ds.VGA.cx) / ds.VGA.fx, (100 - ds.VGA.cy) / ds.VGA.fy, 1.0])
    points = np.stack([3.0 * ray, 2.0 * ray, 5.0 * ray, 4.0 * other])
    samples = point_samples(points, np.eye(3), np.zeros(3), ds.VGA)
    found = sorted(zip(samples.rows.tolist(), samples.cols.tolist(), samples.depth.tolist()))
    assert found == [(100, 100, 4.0), (240, 400, 2.0)]


def test_cloud_drops_what_the_camera_cannot_see():
    ray = np.array([(10 - ds.VGA.cx) / ds.VGA.fx, (20 - ds.VGA.cy) / ds.VGA.fy, 1.0])
    points = np.array([
        2.0 * ray,  # seen
        [0.0, 0.0, -2.0],  # behind
        [0.0, 0.0, 0.01],  # nearer than the sensor's housing
        [10.0, 0.0, 1.0],  # outside the image
        [np.nan, 0.0, 2.0], [np.inf, 0.0, 2.0], [0.0, 0.0, np.inf],
    ])
    samples = point_samples(points, np.eye(3), np.zeros(3), ds.VGA)
    assert (samples.rows.tolist(), samples.cols.tolist()) == ([20], [10])
    assert samples.depth.tolist() == [pytest.approx(2.0)]


def test_cloud_of_no_finite_point_and_cloud_out_of_view_are_refused():
    with pytest.raises(UnusableReference) as refused:
        point_samples(np.full((50, 3), np.nan), np.eye(3), np.zeros(3), ds.VGA)
    assert refused.value.kind == REFERENCE_NON_FINITE
    with pytest.raises(UnusableReference) as refused:
        point_samples(np.array([[0.0, 0.0, -1.0]]), np.eye(3), np.zeros(3), ds.VGA)
    assert refused.value.kind == REFERENCE_EMPTY


@pytest.mark.parametrize("values", [[0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 1.1],
                                    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                                    [0.0, 0.0, np.nan, 0.0, 0.0, 0.0, 1.0],
                                    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
def test_bad_extrinsic_is_refused(values):
    with pytest.raises(UnusableReference) as refused:
        pose_from_extrinsic(values)
    assert refused.value.kind == REFERENCE_EXTRINSIC


def test_nearly_unit_quaternion_is_renormalised():
    rotation, _ = pose_from_extrinsic([0.0, 0.0, 0.0, 0.0, 0.0, 0.7075, 0.7075])
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(rotation @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-12)


# --- Refusals -------------------------------------------------------------------------------

def test_too_few_points_are_refused():
    rng = np.random.default_rng(6)
    truth = _view("room")
    prediction = _relative(truth, rng)
    reference = _depth_reference(truth, rng, fraction=20 / truth.size)
    with pytest.raises(FitRefused) as refused:
        _aligner().update(prediction, depth_image_samples(reference, H, W), None)
    assert refused.value.reason == TOO_FEW_POINTS
    assert "20" in str(refused.value) and "30" in str(refused.value)


def test_wall_facing_the_camera_is_degenerate_for_an_affine_fit_only():
    rng = np.random.default_rng(7)
    wall, _ = ds.render([ds.Plane((0.0, 0.0, 1.0), 3.0)])
    samples = depth_image_samples(_depth_reference(wall, rng), H, W)
    with pytest.raises(FitRefused) as refused:
        _aligner().update(_relative(wall, rng), samples, None)
    assert refused.value.reason == DEGENERATE
    # A scale alone is well defined by one distance.
    prediction = _metric(wall, rng)
    fitted = _aligner(inverse=False).update(prediction, samples, None)
    assert _error(fitted, prediction, wall) <= CLEAN_BOUND


def test_anti_correlated_reference_is_refused():
    rng = np.random.default_rng(8)
    truth = _view("room")
    reference = _depth_reference(truth, rng)
    valid = reference > 0
    # Nearer where the network sees farther: inverse depths mirrored about 0.7 /m.
    reference[valid] = 1.0 / (0.7 - 1.0 / reference[valid])
    with pytest.raises(FitRefused) as refused:
        _aligner().update(_relative(truth, rng), depth_image_samples(reference, H, W), None)
    assert refused.value.reason == NON_POSITIVE_SCALE


@pytest.mark.parametrize("inverse", [True, False])
def test_reference_unrelated_to_the_prediction_is_refused(inverse):
    rng = np.random.default_rng(9)
    truth = _view("room")
    prediction = _relative(truth, rng) if inverse else _metric(truth, rng)
    reference = _depth_reference(truth, rng)
    valid = reference > 0
    reference[valid] *= np.exp(0.4 * rng.standard_normal(np.count_nonzero(valid)))
    with pytest.raises(FitRefused) as refused:
        _aligner(inverse).update(prediction, depth_image_samples(reference, H, W), None)
    assert refused.value.reason == RESIDUAL_TOO_LARGE
    assert "10.0%" in str(refused.value)


def test_a_refused_frame_keeps_the_last_good_fit():
    rng = np.random.default_rng(10)
    truth = _view("room")
    prediction = _relative(truth, rng)
    aligner = _aligner()
    good = aligner.update(prediction, depth_image_samples(_depth_reference(truth, rng), H, W),
                          0.0)
    few = depth_image_samples(_depth_reference(truth, rng, fraction=10 / truth.size), H, W)
    with pytest.raises(FitRefused):
        aligner.update(prediction, few, 0.1)
    assert aligner.current is good
    with pytest.raises(FitRefused) as refused:
        aligner.update(np.zeros((H, W), np.float32), few, 0.2)
    assert refused.value.reason == DEGENERATE
    assert aligner.current is good


def test_fit_is_repeatable():
    rng = np.random.default_rng(11)
    p = rng.uniform(1.0, 5.0, 3000)
    d = _corrupt(1.0 / (0.1 * p + 0.05) * (1.0 + NOISE * rng.standard_normal(p.size)), 0.3,
                 rng)
    first = fit(p, d, True, MIN_POINTS, MAX_RESIDUAL)
    assert fit(p, d, True, MIN_POINTS, MAX_RESIDUAL) == first


# --- Normalisation and units ---------------------------------------------------------------

def test_normalisation_removes_a_global_scale_and_shift():
    rng = np.random.default_rng(12)
    prediction = _relative(_view("room"), rng)
    norm = normalization(prediction, True)
    other = normalization(1.3 * prediction + 0.4, True)
    assert other.spread == pytest.approx(1.3 * norm.spread, rel=1e-5)
    assert other.centre == pytest.approx(1.3 * norm.centre + 0.4, rel=1e-5)
    metric = normalization(prediction, False)
    assert metric.centre == 0.0
    assert normalization(2.0 * prediction, False).spread == pytest.approx(2.0 * metric.spread,
                                                                          rel=1e-6)
    assert metric.spread == pytest.approx(float(np.median(prediction)), rel=0.01)


def test_fit_on_normalised_predictions_gives_the_same_depths_on_raw_ones():
    raw = np.linspace(0.5, 8.0, 50, dtype=np.float32)
    for fitted, norm in ((ScaleFit(0.2, 1.2, True, 10, 0.01), Normalization(3.0, 0.5)),
                         (ScaleFit(1.7, 0.0, False, 10, 0.01), Normalization(0.0, 0.5))):
        assert np.isfinite(fitted.depth((raw - norm.centre) / norm.spread)).all()
        np.testing.assert_allclose(fitted.in_raw_units(norm).depth(raw),
                                   fitted.depth((raw - norm.centre) / norm.spread), rtol=1e-5)


def test_fit_depth_is_nan_where_the_map_gives_no_depth():
    fitted = ScaleFit(scale=1.0, shift=-1.0, inverse=True, inliers=10, residual=0.01)
    prediction = np.array([[0.5, 1.0, 3.0], [np.nan, np.inf, 1.5]], np.float32)
    out = np.empty_like(prediction)
    assert fitted.depth(prediction, out) is out
    np.testing.assert_array_equal(np.isnan(out), [[True, True, False], [True, True, False]])
    np.testing.assert_allclose(out[~np.isnan(out)], [0.5, 2.0])
    metric = ScaleFit(scale=2.0, shift=0.0, inverse=False, inliers=10, residual=0.01)
    depth = metric.depth(np.array([-1.0, 0.0, 1.5, np.inf], np.float32))
    np.testing.assert_array_equal(np.isnan(depth), [True, True, False, True])
    assert depth[2] == 3.0


# --- Over time -------------------------------------------------------------------------------

def _output_scale(fitted: ScaleFit, prediction: np.ndarray, truth: np.ndarray) -> float:
    valid = np.isfinite(truth)
    return float(np.median(fitted.depth(prediction)[valid] / truth[valid]))


def _run(aligner: ScaleAligner, frames: int, rng: np.random.Generator, jitter: float = 0.0,
         true_scale: float = 1.0, start: int = 0) -> list[float]:
    """Feed 10 Hz frames of the static room; return each frame's output scale vs the truth.

    Every frame has fresh network noise, a fresh sparse reference (200 points, 3 % noise)
    and, with ``jitter``, the whole prediction multiplied by a random 1 + jitter * N(0, 1).
    """
    base = _view("room")
    truth = true_scale * base
    scales = []
    for frame in range(start, start + frames):
        prediction = _relative(base, rng) * np.float32(1.0 + jitter * rng.standard_normal())
        reference = np.zeros_like(truth)
        pixels = rng.choice(truth.size, 200, replace=False)
        reference.ravel()[pixels] = truth.ravel()[pixels] * (
            1.0 + 0.03 * rng.standard_normal(pixels.size))
        fitted = aligner.update(prediction, depth_image_samples(reference, H, W), frame / 10.0)
        scales.append(_output_scale(fitted, prediction, truth))
    return scales


def test_network_scale_jitter_does_not_reach_the_output():
    filtered = np.array(_run(_aligner(), 30, np.random.default_rng(13), jitter=0.05))
    change = np.abs(filtered[1:] / filtered[:-1] - 1.0)
    assert change.max() <= 0.01
    assert np.abs(filtered[10:] - 1.0).max() <= 0.01
    # Each frame's own fit varies more: the filter is what steadies the scale.
    unfiltered = np.array(_run(_aligner(time_constant_s=0.0), 30, np.random.default_rng(13),
                               jitter=0.05))
    assert np.median(np.abs(unfiltered[1:] / unfiltered[:-1] - 1.0)) > 2.0 * np.median(change)


def test_a_lasting_change_of_scale_is_followed_within_three_time_constants():
    rng = np.random.default_rng(14)
    aligner = _aligner(change_ratio=0.5)  # the change test must not shortcut the filter
    _run(aligner, 20, rng)
    after = _run(aligner, 31, rng, true_scale=1.2, start=20)
    assert abs(after[0] - 1.0) > 0.1  # the first frame after the step is mostly the old fit
    assert abs(after[30] - 1.0) <= 0.02  # 30 frames at 10 Hz = 3 time constants


def test_a_change_of_view_restarts_the_filter():
    rng = np.random.default_rng(15)
    aligner = _aligner(change_ratio=0.15)
    _run(aligner, 20, rng)
    # Depths 1.5x farther: a 33 % change at the reference points, beyond change_ratio.
    after = _run(aligner, 1, rng, true_scale=1.5, start=20)
    assert abs(after[0] - 1.0) <= 0.02


def test_filter_restarts_without_increasing_stamps():
    old, new = ScaleFit(1.0, 0.5, True, 50, 0.01), ScaleFit(1.02, 0.5, True, 60, 0.02)
    probe = np.linspace(0.0, 3.0, 100)
    smoothing = AlignmentFilter(time_constant_s=1.0, change_ratio=0.5)
    assert smoothing.update(old, 1.0, probe) is old
    blended = smoothing.update(new, 1.1, probe)
    weight = 1.0 - math.exp(-0.1)
    assert blended.scale == pytest.approx(1.0 + weight * 0.02, rel=1e-12)
    assert (blended.inliers, blended.residual) == (60, 0.02)
    assert 0.0 < smoothing.last_change < 0.02
    assert smoothing.update(old, 1.1, probe) is old  # stamp did not increase
    assert smoothing.update(new, None, probe) is new  # no stamp
    assert smoothing.update(old, 2.0, probe) is old  # nothing to continue from
    smoothing.reset()
    assert smoothing.update(new, 3.0, probe) is new
    instant = AlignmentFilter(time_constant_s=0.0, change_ratio=0.5)
    instant.update(old, 1.0, probe)
    assert instant.update(new, 1.1, probe) is new


def test_aligner_exposes_its_settings():
    aligner = ScaleAligner(inverse=False, min_points=12, max_residual=0.07,
                           time_constant_s=2.5, change_ratio=0.3)
    assert (aligner.inverse, aligner.min_points, aligner.max_residual, aligner.time_constant_s,
            aligner.change_ratio, aligner.current) == (False, 12, 0.07, 2.5, 0.3, None)
    with pytest.raises(ValueError):
        ScaleAligner(inverse=True, min_points=1, max_residual=0.1, time_constant_s=1.0,
                     change_ratio=0.1)
