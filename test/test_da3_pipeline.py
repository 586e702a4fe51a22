"""What the pipeline does with Depth Anything 3's outputs, on rendered scenes with known depth.

The "network" here is an oracle IR with DA3 metadata whose outputs are fixed arrays made from
a rendered scene: depth with the errors a real network makes (flying pixels along depth
edges, noise on a texture-less wall), a confidence that is low exactly there, and a sky.
So every expectation is known in advance: which pixels are sky, which points the confidence
mask removes, what metres the focal length gives.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest

from depth_anything_ros.geometry.intrinsics import Intrinsics
from depth_anything_ros.inference.engine import DepthEngine, EngineConfig
from depth_anything_ros.inference.metadata import (CONFIDENCE, FOCAL_DEPTH, ModelMetadata,
                                                   RELATIVE_DEPTH, RT_INFO_SECTION, SKY)
from depth_anything_ros.pipeline.camera import CameraPipeline, Wanted
from depth_anything_ros.pipeline.messages.image_input import DecodedImage
from depth_anything_ros.pipeline.parameters import NodeParams
from depth_scenes import floor_with_boxes, render

SIZE = (126, 168)                 # network and camera size: no resize blurs the oracle's arrays
CAMERA = Intrinsics(fx=150.0, fy=150.0, cx=83.5, cy=62.5, width=SIZE[1], height=SIZE[0])
IMAGE = DecodedImage(np.full((*SIZE, 3), 128, np.uint8), "bgr")


@dataclasses.dataclass(frozen=True)
class Scene:
    truth: np.ndarray        # rendered depth, metres
    predicted: np.ndarray    # what the oracle "network" says: truth with a network's errors
    confidence: np.ndarray   # low where predicted is wrong


def rendered_scene(camera: Intrinsics) -> Scene:
    """Boxes on a floor before a wall, with flying pixels on depth edges and a noisy patch.

    A pixel whose 3x3 neighbourhood spans more than 10 % in depth is an edge: the oracle
    blends it with its neighbours, as a network's blur does. A patch of the wall (no
    texture to go by) gets 20 % noise. Confidence is low on both, high elsewhere.
    """
    truth, _ = render(floor_with_boxes(0.8), camera)
    rng = np.random.default_rng(3)
    padded = np.pad(truth, 1, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3))
    edge = windows.max(axis=(2, 3)) > 1.1 * windows.min(axis=(2, 3))
    noisy = np.zeros(truth.shape, bool)
    noisy[25:45, 110:150] = True
    noisy &= ~edge
    predicted = truth.copy()
    predicted[edge] = windows.mean(axis=(2, 3))[edge]
    predicted[noisy] *= 1 + 0.2 * rng.standard_normal(int(noisy.sum())).astype(np.float32)
    confidence = 3.0 + 0.5 * rng.random(truth.shape)
    confidence[edge] = 1.1 + 0.1 * rng.random(int(edge.sum()))
    confidence[noisy] = 1.5 + 0.2 * rng.random(int(noisy.sum()))
    return Scene(truth, predicted.astype(np.float32), confidence.astype(np.float32))


def oracle_ir(folder: Path, meaning: str, planes: dict[str, tuple[str, np.ndarray]]) -> Path:
    """Write an IR with DA3 metadata whose named outputs are ``planes``, whatever the input.

    ``planes`` maps output name -> (meaning, (H, W) array); the first is the depth.
    """
    image = ops.parameter([1, 3, *SIZE], np.float32, name="image")
    # 0 * the input keeps the graph connected to its parameter; the outputs are the planes.
    zero = ops.multiply(ops.reduce_sum(image, ops.constant(np.array([1], np.int64)), False),
                        ops.constant(np.float32(0.0)))
    results = []
    for name, (_, plane) in planes.items():
        node = ops.add(zero, ops.constant(plane[None].astype(np.float32)))
        node.output(0).get_tensor().set_names({name})
        results.append(ops.result(node))
    model = ov.Model(results, [image], "oracle")
    meta = ModelMetadata(
        encoder="vits", depth_type="metric" if meaning == FOCAL_DEPTH else "relative",
        max_depth=0.0, input_height=SIZE[0], input_width=SIZE[1], precision="fp32",
        family="da3", model_name="oracle",
        outputs=tuple((name, m) for name, (m, _) in planes.items()),
        focal_reference=300.0 if meaning == FOCAL_DEPTH else 0.0,
        sky_threshold=0.3 if any(m == SKY for m, _ in planes.values()) else 0.0)
    for key, value in meta.to_rt_info().items():
        model.set_rt_info(value, [RT_INFO_SECTION, key])
    xml = folder / "oracle.xml"
    ov.save_model(model, str(xml), compress_to_fp16=False)
    return xml


def pipeline_for(xml: Path) -> CameraPipeline:
    return CameraPipeline(DepthEngine(EngineConfig(str(xml), inference_precision="f32",
                                                   cache_dir="none")))


def run(pipeline: CameraPipeline, p: NodeParams, camera: Intrinsics = CAMERA):
    from depth_anything_ros.geometry.calibration import CameraCalibration

    k = (camera.fx, 0.0, camera.cx, 0.0, camera.fy, camera.cy, 0.0, 0.0, 1.0)
    pipeline.add_calibration(CameraCalibration(camera.width, camera.height, k=k), 1)
    return pipeline.finish(pipeline.infer(IMAGE, 1, p), 1, p, Wanted())


@pytest.fixture(scope="module")
def scene():
    return rendered_scene(CAMERA)


@pytest.fixture(scope="module")
def small_like(tmp_path_factory, scene) -> CameraPipeline:
    """Return a DA3-Small-like oracle: relative depth (the scene x 0.5) and its confidence."""
    folder = tmp_path_factory.mktemp("oracle_small")
    return pipeline_for(oracle_ir(folder, RELATIVE_DEPTH, {
        "depth": (RELATIVE_DEPTH, scene.predicted / 2.0),
        "confidence": (CONFIDENCE, scene.confidence)}))


@pytest.fixture(scope="module")
def metric_like(tmp_path_factory, scene) -> CameraPipeline:
    """Return a DA3-Metric-like oracle: focal_depth at 300 px focal, sky over the top rows."""
    folder = tmp_path_factory.mktemp("oracle_metric")
    sky = np.zeros(SIZE, np.float32)
    sky[:20] = 1.0
    sky[20:24] = 0.29          # just below the threshold: not sky
    return pipeline_for(oracle_ir(folder, FOCAL_DEPTH, {
        "depth": (FOCAL_DEPTH, scene.truth * (300.0 / 150.0)),
        "sky": (SKY, sky)}))


def test_metres_come_from_the_cameras_focal_length(metric_like, scene):
    p = NodeParams(flying_pixel_filter=False, sky_mask=False)
    depth = run(metric_like, p).depth
    np.testing.assert_allclose(depth, scene.truth, rtol=1e-6)
    doubled = run(metric_like, p, dataclasses.replace(CAMERA, fx=300.0, fy=300.0)).depth
    np.testing.assert_allclose(doubled, 2 * scene.truth, rtol=1e-6)
    # The mean of fx and fy, as upstream takes it.
    mixed = run(metric_like, p, dataclasses.replace(CAMERA, fx=100.0, fy=200.0)).depth
    np.testing.assert_allclose(mixed, scene.truth, rtol=1e-6)


def test_sky_is_infinite_in_depth_absent_from_the_cloud_and_black(metric_like, scene):
    out = run(metric_like, NodeParams(flying_pixel_filter=False))
    assert np.all(np.isposinf(out.depth[:20]))
    np.testing.assert_allclose(out.depth[20:], scene.truth[20:], rtol=1e-6)
    assert np.all(np.isnan(out.points[:20])) and np.all(np.isfinite(out.points[20:, :, 2]))
    assert np.all(out.colorized[:20] == 0)
    # Off: the sky keeps the network's depth.
    kept = run(metric_like, NodeParams(flying_pixel_filter=False, sky_mask=False))
    assert np.all(np.isfinite(kept.depth[:20]))


def test_confidence_mask_drops_the_least_confident_points_first(small_like, scene):
    p = NodeParams(relative_scale=2.0, flying_pixel_filter=False, cloud_max_range=100.0)
    full = run(small_like, dataclasses.replace(p, confidence_drop_fraction=0.0))
    np.testing.assert_allclose(full.depth, scene.predicted, rtol=1e-6)
    np.testing.assert_array_equal(full.confidence, scene.confidence)
    finite = np.isfinite(full.points[..., 2])
    for fraction in (0.1, 0.2, 0.4):
        out = run(small_like, dataclasses.replace(p, confidence_drop_fraction=fraction))
        kept = np.isfinite(out.points[..., 2])
        dropped = finite & ~kept
        assert abs(dropped.sum() / finite.sum() - fraction) <= 0.01, fraction
        assert scene.confidence[dropped].max() <= scene.confidence[kept].min()


def test_confidence_mask_removes_the_edges_and_the_noise(small_like, scene):
    """The wrong points go first: at the share they make up, nearly all of them are gone."""
    p = NodeParams(relative_scale=2.0, flying_pixel_filter=False, cloud_max_range=100.0)
    wrong = np.abs(scene.predicted / scene.truth - 1) > 0.05
    share = float(wrong.mean())
    print(f"wrong points (error > 5 %): {share:.1%} of the frame")
    for fraction in (0.0, 0.1, 0.2, 0.3, 0.4):
        out = run(small_like, dataclasses.replace(p, confidence_drop_fraction=fraction))
        kept = np.isfinite(out.points[..., 2])
        left = float((wrong & kept).sum() / kept.sum())
        lost = float((~wrong & ~kept).sum() / (~wrong).sum())
        print(f"drop {fraction:.1f}: wrong points left {left:.1%} of the cloud, "
              f"right points lost {lost:.1%}")
        if fraction >= share + 0.02:
            assert left <= 0.01
