"""Section 'pipeline': the node's per-frame work, stage by stage, with the real modules.

Stages run in the order the node runs them, on one synthetic camera frame, with the
node's defaults (our FP16 IR, LATENCY hint, device-default precision; colorize range
0.3-10 m; full-resolution xyzrgb cloud). Preprocessing (the host's float resize, colour
and normalisation in the graph) and the resize back to camera size are part of
``engine.infer``, so their cost is shown as the difference between it and the same IR
fed an already-preprocessed tensor, the two timed in alternation so that background
load cannot fake a difference.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import openvino as ov
import rclpy
from rclpy.context import Context
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import Header

from benchmarks.artifacts import ModelFiles, scenes
from benchmarks.camera_client import camera_image
from benchmarks.msg_fill import run_msg_fill
from benchmarks.timing import measure, measure_interleaved, SPIN_PAUSE_S
from depth_anything_ros.geometry.calibration import CameraCalibration
from depth_anything_ros.geometry.colorize import Colorizer
from depth_anything_ros.geometry.flying_pixels import FlyingPixelFilter
from depth_anything_ros.geometry.intrinsics import Intrinsics
from depth_anything_ros.geometry.rays import RayGrid
from depth_anything_ros.geometry.rectify import Rectifier
from depth_anything_ros.geometry.reference import GroundPlane, pose_from_extrinsic
from depth_anything_ros.geometry.temporal import TemporalFilter
from depth_anything_ros.inference.engine import DepthEngine, EngineConfig
from depth_anything_ros.inference.preprocess import reference_tensor
from depth_anything_ros.pipeline.camera import CameraPipeline, Wanted
from depth_anything_ros.pipeline.messages.image_input import image_to_array
from depth_anything_ros.pipeline.parameters import NodeParams
from depth_anything_ros.pipeline.scale_alignment import CameraAlignment
from depth_anything_ros.ros.cloud_msg import CloudBuilder
from depth_anything_ros.ros.codec import array_to_image

FALLBACK_HFOV_DEG = 60.0
# A wide lens's distortion (plumb_bob k1 k2 p1 p2 k3), for timing rectification.
DISTORTION = (-0.3, 0.1, 0.001, -0.0015, 0.0)
MATCH_TIMEOUT_S = 10.0


class _Publishers:
    """Publishers with a matched subscriber in another DDS participant (own Context).

    That way publish() pays serialization and a real transport write. The subscriber is
    never spun: with depth-1 history nothing waits for it, and its process time is not ours.
    """

    def __init__(self, domain_id: int) -> None:
        self.contexts = [Context(), Context()]
        nodes = []
        for index, context in enumerate(self.contexts):
            rclpy.init(context=context, domain_id=domain_id)
            nodes.append(rclpy.create_node(f"bench_pipeline_{index}", context=context))
        self.nodes = nodes
        qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        self.depth = nodes[0].create_publisher(Image, "bench/depth", qos)
        self.colorized = nodes[0].create_publisher(Image, "bench/colorized", qos)
        self.points = nodes[0].create_publisher(PointCloud2, "bench/points", qos)
        for msg_type, topic in ((Image, "bench/depth"), (Image, "bench/colorized"),
                                (PointCloud2, "bench/points")):
            nodes[1].create_subscription(msg_type, topic, lambda _msg: None, qos)
        deadline = time.monotonic() + MATCH_TIMEOUT_S
        publishers = (self.depth, self.colorized, self.points)
        while any(p.get_subscription_count() == 0 for p in publishers):
            if time.monotonic() > deadline:
                raise TimeoutError("the pipeline benchmark's subscriber never matched")
            time.sleep(0.05)

    def close(self) -> None:
        for node, context in zip(self.nodes, self.contexts):
            node.destroy_node()
            rclpy.try_shutdown(context=context)


def alignment_stages(depth: np.ndarray,
                     camera: Intrinsics) -> list[tuple[str, Callable[[], object]]]:
    """Return a reference's arrival and a frame's alignment, per ``scale_source``.

    Each on a relative model's output (the affine fit, the dearer one), with the node's
    defaults; the prediction is the inverse of the network's depth, the references the
    depth itself. Sparse as real ones are: 0.5 % of the pixels of a registered depth
    image, and a 16-beam LiDAR's 14400 points of which two thirds face the camera.
    """
    prediction = (1.0 / np.maximum(depth, 0.1)).astype(np.float32)
    rng = np.random.default_rng(0)
    sparse = np.full(depth.shape, np.nan, np.float32)
    chosen = rng.random(depth.shape) < 0.005
    sparse[chosen] = depth[chosen]
    # 16 beams across the image, 900 returns each over 360 degrees: 600 face the camera
    # (back-projected from the depth), 300 lie behind it and must be dropped.
    rows = np.linspace(0, depth.shape[0] - 1, 16).astype(int)[:, None]
    cols = np.linspace(0, depth.shape[1] - 1, 600).astype(int)[None, :]
    z = depth[rows, cols]
    ahead = np.stack([(cols - camera.cx) / camera.fx * z, (rows - camera.cy) / camera.fy * z,
                      z], axis=-1).reshape(-1, 3)
    behind = ahead[: len(ahead) // 2] * np.array([1.0, 1.0, -1.0])
    to_optical = (0.0, 0.0, 0.0, -0.5, 0.5, -0.5, 0.5)
    rotation, _ = pose_from_extrinsic(to_optical)
    # LiDAR frame x forward, y left, z up; the extrinsic turns it into the optical frame.
    lidar = (np.concatenate([ahead, behind]) @ rotation).astype(np.float32)
    floor = GroundPlane(0.5, 10.0, 0.0).depth(camera)
    on_floor = (1.0 / np.where(np.isfinite(floor), floor, 20.0)).astype(np.float32)
    stages = []
    for source, add, seen in (
            ("depth", lambda a, p: a.add_depth(sparse, 0, p), prediction),
            ("points", lambda a, p: a.add_points(lidar, 0, p), prediction),
            ("ground", None, on_floor)):
        params = NodeParams(scale_source=source, camera_height=0.5, camera_pitch_deg=10.0,
                            reference_extrinsic=to_optical)
        alignment = CameraAlignment(metric_model=False, inverse=True)
        alignment.metres(seen, 0, camera, params)  # the camera's size is known from now on
        if add is not None:
            add(alignment, params)
            stages.append((f"scale alignment, scale_source {source}: a reference arrives "
                           "(checked, sampled; executor thread)",
                           lambda alignment=alignment, add=add, params=params:
                           add(alignment, params)))
        stages.append((f"scale alignment, scale_source {source}: per frame (fit, filter, "
                       "metres; CameraAlignment.metres)",
                       lambda alignment=alignment, seen=seen, params=params:
                       alignment.metres(seen, 0, camera, params)))
    return stages


def run_pipeline(models: ModelFiles, camera_size: tuple[int, int], runs: int, warmup: int,
                 domain_id: int, log: Callable[[str], None] = print) -> dict:
    height, width = camera_size
    pixels = scenes(1, height, width)[0]
    header = Header(frame_id="camera_optical_frame")
    msg = camera_image(pixels, header)
    engine = DepthEngine(EngineConfig(str(models.ours["fp16"]), cache_dir="none"))
    engine.warmup(height, width)
    network = ov.Core().compile_model(str(models.ours["fp16"]), "CPU",
                                      engine.compile_properties())
    request = network.create_infer_request()
    net_input = reference_tensor(pixels, *models.network_size)
    colorizer = Colorizer("turbo", 0.3, 10.0)
    camera = Intrinsics.from_fov(width, height, FALLBACK_HFOV_DEG)
    grid = RayGrid(camera, 1)
    flying = FlyingPixelFilter()
    rectifier = Rectifier()
    distorted = CameraCalibration(width, height, k=camera.k_matrix(), d=DISTORTION,
                                  p=camera.p_matrix(), distortion_model="plumb_bob")
    temporal = TemporalFilter()
    builder = CloudBuilder()

    decoded = image_to_array(msg)
    depth = engine.infer(decoded.pixels, decoded.order)
    colors = colorizer(depth)
    points = grid.points(depth, 0.1, 20.0)
    cleaned = np.empty_like(depth)
    depth_msg = array_to_image(depth, "32FC1", header)
    colorized_msg = array_to_image(colors, "bgr8", header)
    cloud_msg = builder.build(points, header, decoded.pixels)

    stages: list[tuple[str, Callable[[], object]]] = [
        ("message -> array (image_input.image_to_array)", lambda: image_to_array(msg)),
        ("inference, u8 image -> depth at camera size (engine.infer)",
         lambda: engine.infer(decoded.pixels, decoded.order)),
        ("colorize (Colorizer, turbo)", lambda: colorizer(depth)),
        ("flying-pixel removal (FlyingPixelFilter.remove, on by default)",
         lambda: flying.remove(depth, camera, cleaned)),
        ("point cloud (RayGrid.points, stride 1)", lambda: grid.points(depth, 0.1, 20.0)),
        ("build depth Image (array_to_image 32FC1)",
         lambda: array_to_image(depth, "32FC1", header)),
        ("build colorized Image (array_to_image bgr8)",
         lambda: array_to_image(colors, "bgr8", header)),
        ("build xyzrgb PointCloud2 (CloudBuilder)",
         lambda: builder.build(points, header, decoded.pixels)),
    ]
    results: list[dict] = []
    for name, fn in stages:
        latency = measure(fn, runs, warmup)
        log(f"  {name}: median {latency.median_ms:.2f} ms")
        results.append({"stage": name, "latency": latency.to_json(), "in_total": True})

    whole, network_only = measure_interleaved(
        [lambda: engine.infer(decoded.pixels, decoded.order),
         lambda: request.infer({0: net_input})], runs, warmup, SPIN_PAUSE_S)
    results[1]["latency"] = whole.to_json()
    results.insert(2, {"stage": "  of which the network (same IR, preprocessed f32 input)",
                       "latency": network_only.to_json(), "in_total": False})
    results.insert(3, {"stage": "  of which preprocessing (host resize, in-graph colour and "
                                "normalisation) + output resize (difference)",
                       "latency": {"median_ms": whole.median_ms - network_only.median_ms},
                       "in_total": False})

    publishers = _Publishers(domain_id)
    try:
        for name, pub, message in (("publish depth Image", publishers.depth, depth_msg),
                                   ("publish colorized Image", publishers.colorized,
                                    colorized_msg),
                                   ("publish xyzrgb PointCloud2", publishers.points,
                                    cloud_msg)):
            latency = measure(lambda: pub.publish(message), runs, warmup)
            log(f"  {name}: median {latency.median_ms:.2f} ms")
            results.append({"stage": name, "latency": latency.to_json(), "in_total": True})
    finally:
        publishers.close()

    # The stages above as the node runs them: one call after the network does the
    # calibration choice, colorize and points, so its cost should be their sum.
    # Optional stages, off the default path: rectification runs only for a camera with
    # a distortion vector, temporal smoothing only when switched on.
    for name, fn in (
            ("rectify the camera image (Rectifier, plumb_bob, maps cached; distorted cameras)",
             lambda: rectifier.rectify(decoded.pixels, distorted)),
            ("temporal smoothing (TemporalFilter; temporal_smoothing: true)",
             lambda: temporal(depth, decoded.pixels)),
            *alignment_stages(depth, camera)):
        latency = measure(fn, runs, warmup)
        log(f"  {name}: median {latency.median_ms:.2f} ms")
        results.append({"stage": name, "latency": latency.to_json(), "in_total": False})

    # The stages above as the node runs them: one call after the network does the
    # calibration choice, colorize, flying pixels and points, so its cost should be
    # their sum.
    pipeline = CameraPipeline(engine)
    node_defaults = NodeParams()
    net = pipeline.infer(decoded, 0, node_defaults)
    finish = measure(lambda: pipeline.finish(net, 0, node_defaults, Wanted(relative=False)),
                     runs, warmup)
    log(f"  CameraPipeline.finish: median {finish.median_ms:.2f} ms")
    results.insert(7, {"stage": "  colorize + flying pixels + point cloud as one "
                                "CameraPipeline.finish call (what the node runs)",
                       "latency": finish.to_json(), "in_total": False})

    total = sum(r["latency"]["median_ms"] for r in results if r["in_total"])
    log("  msg.data fill alternatives")
    fill = run_msg_fill(runs, height, width)
    return {"camera_size": list(camera_size), "network_size": list(models.network_size),
            "execution": network.get_property("INFERENCE_PRECISION_HINT").get_type_name(),
            "stages": results, "total_median_ms": total, "msg_fill": fill}
