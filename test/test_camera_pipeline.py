"""CameraPipeline without ROS: what each frame gets (calibration, metres, cloud, notes).

A real engine on IRs exported from the synthetic checkpoint, computing in f32, so the
expected values can be recomputed here from the engine's raw output and the geometry.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from depth_anything_ros.geometry.calibration import CameraCalibration
from depth_anything_ros.geometry.intrinsics import Intrinsics
from depth_anything_ros.inference.engine import DepthEngine
from depth_anything_ros.pipeline.camera import CameraPipeline, FrameOutputs, Wanted
from depth_anything_ros.pipeline.messages.image_input import DecodedImage
from depth_anything_ros.pipeline.notes import (REJECT_CAMERA_INFO_INVALID,
                                               REJECT_CAMERA_INFO_SIZE, WARN_CALIBRATION_SCALED,
                                               WARN_NO_CALIBRATION, WARN_NOT_RECTIFYING)
from depth_anything_ros.pipeline.parameters import NodeParams
from scenes import scene

HEIGHT, WIDTH = 120, 160
K = (140.0, 0.0, 81.0, 0.0, 132.0, 58.5, 0.0, 0.0, 1.0)
CAMERA = Intrinsics(140.0, 132.0, 81.0, 58.5, WIDTH, HEIGHT)
STAMP = 5_000_000_123
RTOL = 1e-5


def process(pipeline: CameraPipeline, image: DecodedImage, stamp: int, p: NodeParams,
            wanted: Wanted = Wanted()) -> FrameOutputs:
    """One frame from start to end, as the runner's lane and finisher run it."""
    return pipeline.finish(pipeline.infer(image, stamp, p), stamp, p, wanted)


@pytest.fixture(scope="module")
def metric_engine(small_metric_ir, reference_engine) -> DepthEngine:
    return reference_engine(small_metric_ir)


@pytest.fixture(scope="module")
def relative_engine(small_relative_ir, reference_engine) -> DepthEngine:
    return reference_engine(small_relative_ir)


@pytest.fixture(scope="module")
def image() -> DecodedImage:
    return DecodedImage(scene(5, HEIGHT, WIDTH), "bgr")


def expected_points(depth: np.ndarray, intr: Intrinsics, stride: int = 1) -> np.ndarray:
    vs, us = np.mgrid[0:depth.shape[0]:stride, 0:depth.shape[1]:stride].astype(np.float64)
    z = depth[::stride, ::stride].astype(np.float64)
    return np.stack([z * (us - intr.cx) / intr.fx, z * (vs - intr.cy) / intr.fy, z], -1)


def test_metric_frame_with_its_own_calibration(metric_engine, image):
    pipeline = CameraPipeline(metric_engine)
    calibration = CameraCalibration(WIDTH, HEIGHT, k=K, d=(0.1, 0, 0, 0, 0),
                                    distortion_model="plumb_bob")
    assert pipeline.add_calibration(calibration, STAMP) is None
    p = NodeParams(cloud_min_range=0.0, cloud_max_range=1000.0, flying_pixel_filter=False,
                   rectify="off")
    out = process(pipeline, image, STAMP, p)
    raw = metric_engine.infer(image.pixels, "bgr")
    np.testing.assert_allclose(out.depth, raw, rtol=RTOL)
    assert out.relative is None  # metric models have no relative output
    assert out.intrinsics == CAMERA
    assert out.calibration is calibration and out.calibration_source == "camera_info"
    np.testing.assert_allclose(out.points, expected_points(raw, out.intrinsics), rtol=1e-4,
                               atol=1e-6)
    np.testing.assert_array_equal(out.colors, image.pixels)
    assert out.colorized.shape == (HEIGHT, WIDTH, 3) and out.notes == ()


def test_only_wanted_outputs_are_computed(metric_engine, image):
    out = process(CameraPipeline(metric_engine), image, STAMP, NodeParams(),
                  Wanted(depth=False, points=False, colorized=True, relative=False))
    assert out.depth is None and out.points is None and out.colors is None
    assert out.colorized is not None


def test_stride_range_and_colourless_cloud(metric_engine, image):
    pipeline = CameraPipeline(metric_engine)
    pipeline.add_calibration(CameraCalibration(WIDTH, HEIGHT, k=K), STAMP)
    raw = metric_engine.infer(image.pixels, "bgr")
    low, high = np.percentile(raw, [30, 70])
    p = NodeParams(cloud_stride=3, cloud_min_range=float(low), cloud_max_range=float(high),
                   cloud_color=False, flying_pixel_filter=False)
    out = process(pipeline, image, STAMP, p)
    assert out.points.shape == (40, 54, 3) and out.colors is None
    z = raw[::3, ::3]
    inside = (z >= np.float32(low)) & (z <= np.float32(high))
    assert np.array_equal(np.isfinite(out.points[..., 2]), inside)


def test_resized_calibration_is_scaled_and_said_so(metric_engine, image):
    pipeline = CameraPipeline(metric_engine)
    full = CameraCalibration(2 * WIDTH, 2 * HEIGHT,
                             k=(280.0, 0.0, 162.5, 0.0, 264.0, 117.5, 0.0, 0.0, 1.0))
    pipeline.add_calibration(full, STAMP)
    out = process(pipeline, image, STAMP, NodeParams())
    assert out.intrinsics == CAMERA
    assert [n.key for n in out.notes] == [WARN_CALIBRATION_SCALED]
    assert not out.notes[0].is_rejection


def test_calibration_of_another_shape_is_refused_for_the_frame(metric_engine, image):
    pipeline = CameraPipeline(metric_engine)
    pipeline.add_calibration(CameraCalibration(WIDTH, WIDTH, k=K), STAMP)  # square
    p = NodeParams(fallback_hfov_deg=70.0)
    out = process(pipeline, image, STAMP, p)
    assert [n.key for n in out.notes] == [REJECT_CAMERA_INFO_SIZE]
    assert out.notes[0].is_rejection and "160x160" in out.notes[0].text
    assert out.intrinsics == Intrinsics.from_fov(WIDTH, HEIGHT, 70.0)
    assert out.calibration is None and "size mismatch" in out.calibration_source
    assert out.depth is not None  # depth does not depend on calibration


def test_without_calibration_the_fallback_is_announced_once(metric_engine, image):
    pipeline = CameraPipeline(metric_engine)
    p = NodeParams(fallback_hfov_deg=90.0)
    first = process(pipeline, image, STAMP, p)
    second = process(pipeline, image, STAMP + 1, p)
    assert [n.key for n in first.notes] == [WARN_NO_CALIBRATION] and second.notes == ()
    assert first.intrinsics == Intrinsics.from_fov(WIDTH, HEIGHT, 90.0)
    assert first.calibration_source == "fallback: hfov 90.0 deg"


def test_unusable_calibration_is_a_rejection_and_is_not_kept(metric_engine):
    pipeline = CameraPipeline(metric_engine)
    note = pipeline.add_calibration(CameraCalibration(WIDTH, HEIGHT, k=(0.0,) * 9), STAMP)
    assert note.key == REJECT_CAMERA_INFO_INVALID and "uncalibrated" in note.text
    assert len(pipeline.calibrations) == 0


def test_stamp_matching_picks_the_frames_own_calibration(metric_engine, image):
    pipeline = CameraPipeline(metric_engine)
    for stamp, fx in ((STAMP, 140.0), (STAMP + 1, 180.0)):
        pipeline.add_calibration(CameraCalibration(WIDTH, HEIGHT,
                                                   k=(fx, 0, 81.0, 0, fx, 58.5, 0, 0, 1)), stamp)
    assert process(pipeline, image, STAMP, NodeParams()).intrinsics.fx == 140.0
    latest = process(pipeline, image, STAMP + 7, NodeParams())
    assert latest.intrinsics.fx == 180.0
    assert latest.calibration_source == "camera_info (latest, stamp differs)"


def test_network_resolution_scales_outputs_and_intrinsics(metric_engine, image):
    pipeline = CameraPipeline(metric_engine)
    pipeline.add_calibration(CameraCalibration(WIDTH, HEIGHT, k=K), STAMP)
    out = process(pipeline, image, STAMP, NodeParams(output_resolution="network"))
    net_h, net_w = metric_engine.network_size
    assert out.depth.shape == (net_h, net_w) and out.colors.shape == (net_h, net_w, 3)
    assert out.intrinsics == CAMERA.scaled(net_w, net_h)


def test_relative_model_metres_only_with_a_scale(relative_engine, image):
    pipeline = CameraPipeline(relative_engine)
    raw = relative_engine.infer(image.pixels, "bgr")
    plain = process(pipeline, image, STAMP, NodeParams())
    assert plain.depth is None and plain.points is None
    np.testing.assert_allclose(plain.relative, raw, rtol=RTOL)
    p = dataclasses.replace(NodeParams(), relative_scale=0.5, relative_shift=0.1,
                            cloud_max_range=1000.0)
    scaled = process(pipeline, image, STAMP, p)
    np.testing.assert_allclose(scaled.depth, 1.0 / (0.5 * raw + 0.1), rtol=1e-4)
    assert np.isfinite(scaled.points[..., 2]).any()


# --- clean geometry: rectification, flying pixels, temporal smoothing -------------------

DISTORTION = (-0.3, 0.1, 0.001, -0.0015, 0.0)
P_RECT = (150.0, 0.0, 80.0, 0.0, 0.0, 150.0, 60.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def distorted_calibration(model: str = "plumb_bob") -> CameraCalibration:
    return CameraCalibration(WIDTH, HEIGHT, k=K, d=DISTORTION, p=P_RECT,
                             distortion_model=model)


def test_distorted_camera_is_rectified_before_the_network(metric_engine, image):
    pipeline = CameraPipeline(metric_engine)
    pipeline.add_calibration(distorted_calibration(), STAMP)
    p = NodeParams(flying_pixel_filter=False)
    out = process(pipeline, image, STAMP, p)
    # What image_proc's rectify node would feed a depth node, by OpenCV directly.
    k = np.array(K).reshape(3, 3)
    new_k = np.array(P_RECT).reshape(3, 4)[:, :3]
    map1, map2 = cv2.initUndistortRectifyMap(k, np.array(DISTORTION), np.eye(3), new_k,
                                             (WIDTH, HEIGHT), cv2.CV_32FC1)
    rectified = cv2.remap(image.pixels, map1, map2, cv2.INTER_LINEAR)
    expected = metric_engine.infer(rectified, "bgr")
    assert np.median(np.abs(out.depth - expected) / expected) < 0.01
    assert out.intrinsics == Intrinsics(150.0, 150.0, 80.0, 60.0, WIDTH, HEIGHT)
    assert out.calibration.d == (0.0,) * 5 and out.calibration.k == (
        150.0, 0.0, 80.0, 0.0, 150.0, 60.0, 0.0, 0.0, 1.0)
    assert out.calibration.p == P_RECT and out.notes == ()
    off = process(pipeline, image, STAMP, dataclasses.replace(p, rectify="off"))
    np.testing.assert_allclose(off.depth, metric_engine.infer(image.pixels, "bgr"), rtol=RTOL)
    assert off.calibration.d == DISTORTION


def test_unknown_distortion_model_is_counted_and_the_frame_goes_through(metric_engine, image):
    pipeline = CameraPipeline(metric_engine)
    pipeline.add_calibration(distorted_calibration("fancy_lens"), STAMP)
    out = process(pipeline, image, STAMP, NodeParams())
    assert [n.key for n in out.notes] == [WARN_NOT_RECTIFYING]
    assert "fancy_lens" in out.notes[0].text
    np.testing.assert_allclose(out.depth, metric_engine.infer(image.pixels, "bgr"), rtol=RTOL)


def test_flying_pixels_leave_the_cloud_and_on_request_the_depth_image(metric_engine, image):
    pipeline = CameraPipeline(metric_engine)
    pipeline.add_calibration(CameraCalibration(WIDTH, HEIGHT, k=K), STAMP)
    net = pipeline.infer(image, STAMP, NodeParams())
    # A depth edge the network could have blurred: a near box over a far wall, ramped.
    depth = np.full((HEIGHT, WIDTH), 4.0, np.float32)
    depth[:, 70:] = 2.5
    depth[:, 64:70] = np.linspace(4.0, 2.5, 8, dtype=np.float32)[1:7]
    net = net._replace(raw=depth)
    # About 6 degrees between ray and ramp at this small focal length: under 10.
    p = NodeParams(cloud_max_range=1000.0, flying_pixel_min_angle_deg=10.0)
    out = pipeline.finish(net, STAMP, p)
    cloud_z = out.points[..., 2]
    assert np.isnan(cloud_z[:, 65:69]).all() and np.isfinite(cloud_z[:, :63]).all()
    assert np.isfinite(cloud_z[:, 71:]).all()
    np.testing.assert_array_equal(out.depth, depth)  # depth/image untouched by default
    in_depth = pipeline.finish(net, STAMP, dataclasses.replace(p, flying_pixels_in_depth=True))
    assert np.isnan(in_depth.depth[:, 65:69]).all()
    kept = pipeline.finish(net, STAMP, dataclasses.replace(p, flying_pixel_filter=False))
    assert np.isfinite(kept.points[..., 2]).all()


def test_temporal_smoothing_averages_a_static_scene_only_when_asked(metric_engine, image):
    pipeline = CameraPipeline(metric_engine)
    net = pipeline.infer(image, STAMP, NodeParams())
    first = np.full((HEIGHT, WIDTH), 2.0, np.float32)
    second = np.full((HEIGHT, WIDTH), 2.1, np.float32)  # 5 %: flicker, not a change
    p = NodeParams(temporal_smoothing=True, flying_pixel_filter=False)
    pipeline.finish(net._replace(raw=first), STAMP, p)
    smoothed = pipeline.finish(net._replace(raw=second), STAMP + 100_000_000, p).depth
    assert np.all((smoothed > 2.0) & (smoothed < 2.1))
    plain = pipeline.finish(net._replace(raw=second), STAMP + 200_000_000,
                            dataclasses.replace(p, temporal_smoothing=False)).depth
    np.testing.assert_array_equal(plain, second)
