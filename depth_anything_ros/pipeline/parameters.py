"""The node's parameters as one table: defaults, descriptions, ranges and rules.

``NodeParams`` is that table: each field's default is the declared default (and what
config/depth.yaml lists), its metadata the descriptor text, numeric range and allowed
values. Declaring (ros.parameters), start-up and runtime validation, and every tool that
takes the node's parameters without ROS read it, so they cannot disagree.

Parameters marked ``reload`` take effect only when what they configure is rebuilt (the
compiled model, the subscriptions, the diagnostics timer): the node accepts changes to
them only while it is unconfigured, and applies them at the next configure, rather than
accept a value that would silently do nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import math
import re
from typing import Any, Optional

from depth_anything_ros.geometry.colorize import COLORMAPS
from depth_anything_ros.pipeline.messages.image_input import DEFAULT_MAX_PIXELS

PERFORMANCE_HINTS = ("LATENCY", "THROUGHPUT")
INFERENCE_PRECISIONS = ("", "f32", "bf16", "f16")
INPUT_TRANSPORTS = ("raw", "compressed")
QOS_CHOICES = ("sensor_data", "reliable")
OUTPUT_RESOLUTIONS = ("camera", "network")
RECTIFY_CHOICES = ("auto", "off")
SCALE_SOURCES = ("none", "depth", "points", "ground")
# A ROS name token, or several joined by '/': what can prefix the camera's topics.
CAMERA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*")
IDENTITY_POSE = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)
# test/test_da3_pipeline.py's rendered scene (docs/geometry.md, "Confidence"): its 6 % wrong
# points are all gone at 0.1, and each further 0.1 costs about 10 % of the right ones. Without
# real weights a network's doubtful share is not known, so the default keeps twice that scene's
# share rather than upstream's 0.4, which loses 36 % of the right points there.
CONFIDENCE_DROP_DEFAULT = 0.2


class ParameterError(ValueError):
    """A parameter value the node cannot run with; the message names the parameter."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"parameter '{name}' {reason}")
        self.name = name
        self.reason = reason


def _param(default: Any, description: str, *, reload: bool = False,
           value_range: Optional[tuple[float, float]] = None,
           choices: Optional[tuple[str, ...]] = None) -> Any:
    return dataclasses.field(default=default, metadata={
        "description": description, "reload": reload,
        "range": value_range, "choices": choices})


# Upper bounds of the numeric ranges are sanity limits, not tuning advice.
@dataclass(frozen=True)
class NodeParams:
    cameras: tuple = _param(
        (), "Cameras this node serves with one model, e.g. [front, rear]: each subscribes "
        "<name>/image (or <name>/image/compressed) and <name>/camera_info and publishes "
        "<name>/depth/... relative to the node's namespace. Empty: one camera on image and "
        "camera_info.", reload=True)
    model_path: str = _param(
        "", "OpenVINO IR (.xml) made by depth_anything_export, or a folder holding one model "
        "(several precisions of it, named *_fp16/*_int8/*_fp32.xml: the fastest for this CPU "
        "is loaded, int8 unless the CPU has AMX). Empty: the models folder installed with the "
        "package (share/depth_anything_ros/models).",
        reload=True)
    device: str = _param(
        "CPU", "OpenVINO device: CPU, GPU, NPU, AUTO, or a device name such as GPU.1.",
        reload=True)
    performance_hint: str = _param(
        "LATENCY", "OpenVINO PERFORMANCE_HINT.", reload=True, choices=PERFORMANCE_HINTS)
    inference_precision: str = _param(
        "", "OpenVINO INFERENCE_PRECISION_HINT; empty keeps the device default "
        "(bf16 on CPUs with AMX/AVX512-BF16, use f32 for exact results).",
        reload=True, choices=INFERENCE_PRECISIONS)
    cache_dir: str = _param(
        "", "Compiled-model cache folder; empty: ~/.cache/depth_anything_ros/ov_cache, "
        "'none' disables caching.", reload=True)
    num_streams: int = _param(
        0, "OpenVINO NUM_STREAMS; 0 leaves it to the performance hint.",
        reload=True, value_range=(0, 256))
    num_threads: int = _param(
        0, "OpenVINO INFERENCE_NUM_THREADS; 0 leaves it to the device plugin.",
        reload=True, value_range=(0, 1024))
    inference_workers: int = _param(
        0, "Frames inferred at the same time (inference lanes). 0: as many as the compiled "
        "model's OPTIMAL_NUMBER_OF_INFER_REQUESTS, i.e. 1 with performance_hint LATENCY "
        "(lowest latency) and one per stream with THROUGHPUT (more frames per second at a "
        "higher latency); the log line at the first frame says how many. A camera's frames "
        "are published in order whatever the number.", reload=True, value_range=(0, 16))
    allow_cpu_fallback: bool = _param(
        False, "Run on CPU when the requested device is absent instead of failing.",
        reload=True)
    input_transport: str = _param(
        "raw", "raw: subscribe 'image' (sensor_msgs/Image); compressed: subscribe "
        "'image/compressed' (sensor_msgs/CompressedImage).", reload=True,
        choices=INPUT_TRANSPORTS)
    input_qos: str = _param(
        "sensor_data", "Image and camera_info subscriptions: sensor_data (best effort, depth 1; "
        "connects to reliable and best-effort cameras) or reliable.", reload=True,
        choices=QOS_CHOICES)
    input_queue_depth: int = _param(
        1, "Images and CameraInfo each input subscription holds while the node is busy. 1: "
        "lowest latency; a frame arriving before the previous one was taken replaces it "
        "uncounted. More (with input_qos reliable): every frame reaches the node, which counts "
        "the superseded ones as dropped, at the cost of up to that many frame periods of "
        "latency whenever the node falls behind the camera.", reload=True,
        value_range=(1, 100))
    output_qos: str = _param(
        "reliable", "Output publishers: reliable (depth 1; what rviz2 and depth_image_proc "
        "subscribe with) or sensor_data (best effort, depth 1).", reload=True,
        choices=QOS_CHOICES)
    output_resolution: str = _param(
        "camera", "camera: outputs at the input image size; network: at the network's "
        "input size (cheaper clouds, CameraInfo scaled to match).", choices=OUTPUT_RESOLUTIONS)
    colormap: str = _param(
        "turbo", "Colormap of depth/colorized, near at its low end. Relative models without "
        "relative_scale have no metres: their range is each frame's own.", choices=COLORMAPS)
    colorize_min_depth: float = _param(
        0.3, "Depth (m) drawn with the first colormap colour; nearer pixels are black.",
        value_range=(0.0, 1000.0))
    colorize_max_depth: float = _param(
        10.0, "Depth (m) drawn with the last colormap colour; farther pixels are black. "
        "Must exceed colorize_min_depth.", value_range=(0.0, 1000.0))
    cloud_stride: int = _param(
        1, "Publish every n-th pixel of every n-th row in depth/points.", value_range=(1, 16))
    cloud_min_range: float = _param(
        0.1, "Points nearer than this (m) are NaN in depth/points.", value_range=(0.0, 1000.0))
    cloud_max_range: float = _param(
        20.0, "Points farther than this (m) are NaN in depth/points. Must exceed "
        "cloud_min_range.", value_range=(0.0, 1000.0))
    cloud_color: bool = _param(
        True, "depth/points carries the image colour (x y z rgb, 32 bytes per point) "
        "instead of x y z (16 bytes).")
    relative_scale: float = _param(
        0.0, "Relative models only: metres from the relative output, 1 / (relative_scale * "
        "output + relative_shift) for inverse depth (V2), relative_scale * output + "
        "relative_shift for depth (DA3). 0 publishes no metric outputs (depth/image, "
        "depth/points).", value_range=(0.0, 1.0e6))
    relative_shift: float = _param(
        0.0, "Relative models only: see relative_scale.", value_range=(-1.0e6, 1.0e6))
    rectify: str = _param(
        "auto", "auto: when the matched CameraInfo has a non-zero distortion vector (plumb_bob, "
        "rational_polynomial, equidistant), rectify the image before inference as image_proc's "
        "rectify node does; every output is then in the rectified camera and depth/camera_info "
        "carries D = 0, K = P[:3,:3], R = I. off: use the image as it comes.",
        choices=RECTIFY_CHOICES)
    flying_pixel_filter: bool = _param(
        True, "Remove flying pixels from depth/points: the veil of points that the network's "
        "blur across object edges puts between foreground and background, which costmaps would "
        "mark as obstacles.")
    flying_pixel_min_angle_deg: float = _param(
        2.0, "A point whose surface meets its viewing ray at less than this angle (degrees) is "
        "a flying pixel. 2.0 keeps a floor seen from 0.5 m height out to 14 m.",
        value_range=(0.1, 45.0))
    flying_pixels_in_depth: bool = _param(
        False, "With flying_pixel_filter, also set flying pixels to NaN in depth/image "
        "(REP 117 invalid).")
    sky_mask: bool = _param(
        True, "Models with a sky output (DA3 Mono/Metric-Large): sky pixels (score at or above "
        "the IR's sky_threshold, 0.3 as upstream) are +Inf in depth/image (REP 117: nothing in "
        "range), absent from depth/points and black in depth/colorized. false: the sky keeps "
        "the network's depth.")
    confidence_drop_fraction: float = _param(
        CONFIDENCE_DROP_DEFAULT, "Models with a confidence output (DA3-Small/Base): drop this "
        "fraction of each frame's least confident points from depth/points (a per-frame "
        "percentile; upstream's own point-cloud export drops 0.4). 0 keeps every point.",
        value_range=(0.0, 0.95))
    temporal_smoothing: bool = _param(
        False, "Smooth depth over time where the scene is static; a pixel whose depth changes "
        "takes the new value at once, and all smoothing restarts when the image shows that "
        "the camera moved.")
    temporal_time_constant: float = _param(
        0.5, "temporal_smoothing: time constant (s) of the per-pixel average.",
        value_range=(0.01, 60.0))
    temporal_change_ratio: float = _param(
        0.08, "temporal_smoothing: a pixel whose depth differs from its running estimate by "
        "more than this fraction takes the new depth.", value_range=(0.001, 1.0))
    temporal_motion_threshold: float = _param(
        4.0, "temporal_smoothing: mean grey-level change of an 80x60 thumbnail of the image "
        "(beyond the change of its mean brightness) taken as camera motion, which restarts "
        "the smoothing.", value_range=(0.01, 255.0))
    scale_source: str = _param(
        "none", "Metric scale from a sparse reference (docs/geometry.md, 'Metric scale'). none: "
        "the model's own metres (or relative_scale); depth: a registered depth image on "
        "'reference/depth' (32FC1 m or 16UC1 mm, 0/NaN = no data); points: a PointCloud2 on "
        "'reference/points' "
        "in any frame (TF, else reference_extrinsic); ground: a flat floor at camera_height. "
        "Relative models then publish metric topics without relative_scale.", reload=True,
        choices=SCALE_SOURCES)
    reference_max_age: float = _param(
        0.2, "A reference is used for a frame only if their stamps differ by at most this "
        "many seconds.", value_range=(0.001, 10.0))
    reference_extrinsic: tuple = _param(
        IDENTITY_POSE, "scale_source points without TF: the reference frame's pose in the "
        "camera optical frame, [x, y, z, qx, qy, qz, qw] (metres, unit quaternion); a point p "
        "of the cloud is R(q) p + (x, y, z) in the camera frame.")
    camera_height: float = _param(
        0.0, "scale_source ground: height (m) of the camera's optical centre above the flat "
        "floor.", value_range=(0.0, 100.0))
    camera_pitch_deg: float = _param(
        0.0, "scale_source ground: how far (degrees) the optical axis points below the "
        "horizon.", value_range=(-89.0, 89.0))
    camera_roll_deg: float = _param(
        0.0, "scale_source ground: rotation (degrees) of the camera about its optical axis, "
        "positive when the image's right side is lower than its left.",
        value_range=(-89.0, 89.0))
    alignment_min_points: int = _param(
        30, "Fewest reference points a fit must agree with (inliers); fewer keeps the last "
        "good fit.", value_range=(3, 1000000))
    alignment_max_residual: float = _param(
        0.1, "Largest median relative depth error at the inliers that a fit may have; a worse "
        "fit is refused and the last good one kept.", value_range=(0.001, 1.0))
    alignment_time_constant: float = _param(
        1.0, "Time constant (s) of the filter over the fitted scale (and shift): jitter "
        "averages out, a lasting change is followed within it. 0: use each frame's own fit.",
        value_range=(0.0, 600.0))
    alignment_change_ratio: float = _param(
        0.15, "A fit whose depths at the reference points differ from the filtered ones' by "
        "more than this fraction (median) restarts the filter at once: a change of view, "
        "not jitter.", value_range=(0.001, 10.0))
    fallback_hfov_deg: float = _param(
        60.0, "Horizontal field of view (degrees) assumed until a calibrated CameraInfo "
        "arrives.", value_range=(1.0, 179.0))
    max_pixels: int = _param(
        DEFAULT_MAX_PIXELS, "Input images with more pixels are rejected (protects against corrupt "
        "headers).", value_range=(1, 1 << 28))
    autostart: bool = _param(
        True, "Configure and activate at start-up, as a plain node would. false: stay "
        "unconfigured until a lifecycle manager (nav2_lifecycle_manager, ros2 lifecycle "
        "set) drives the transitions.", reload=True)
    diagnostics_period: float = _param(
        1.0, "Seconds between /diagnostics reports.", reload=True,
        value_range=(0.1, 60.0))


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(NodeParams)}


def defaults() -> dict[str, Any]:
    """Return the declared default of every parameter, as config/depth.yaml must list them."""
    return {name: f.default for name, f in FIELDS.items()}


def type_name(value: Any) -> str:
    """Say what a parameter of ``value``'s type must be given as, for error messages."""
    if isinstance(value, tuple):
        if not value or isinstance(value[0], str):
            return "an array of strings"
        return "an array of floating-point numbers"
    return {bool: "a boolean (true/false)", int: "an integer", float:
            "a floating-point number (write 10.0, not 10)", str: "a string"}[type(value)]


def problems(params: NodeParams) -> list[ParameterError]:
    """Everything wrong with ``params``; empty when the node can run with them.

    Repeats the descriptor ranges so a NodeParams built outside rclpy is checked the
    same way, and adds what descriptors cannot express: allowed strings and
    relations between parameters.
    """
    found = []
    for name, field in FIELDS.items():
        value = getattr(params, name)
        meta = field.metadata
        if meta["choices"] is not None and value not in meta["choices"]:
            found.append(ParameterError(
                name, f"is {value!r}; expected one of "
                f"{', '.join(repr(c) for c in meta['choices'])}"))
        if meta["range"] is not None:
            low, high = meta["range"]
            if not low <= value <= high:
                found.append(ParameterError(name, f"is {value}; must be within [{low}, {high}]"))
    if not params.device.strip():
        found.append(ParameterError("device", "is empty; name an OpenVINO device such as CPU"))
    if params.colorize_max_depth <= params.colorize_min_depth:
        found.append(ParameterError(
            "colorize_max_depth", f"({params.colorize_max_depth}) must exceed colorize_min_depth "
            f"({params.colorize_min_depth})"))
    for name in params.cameras:
        if not CAMERA_NAME.fullmatch(name):
            found.append(ParameterError(
                "cameras", f"has {name!r}, which is not a topic namespace: use letters, digits "
                "and underscores, not starting with a digit (segments joined by '/')"))
    if len(set(params.cameras)) != len(params.cameras):
        found.append(ParameterError("cameras", f"names a camera twice: {list(params.cameras)}"))
    if len(params.reference_extrinsic) != 7:
        found.append(ParameterError(
            "reference_extrinsic", f"has {len(params.reference_extrinsic)} values; expected 7: "
            "[x, y, z, qx, qy, qz, qw]"))
    elif abs(math.sqrt(sum(v * v for v in params.reference_extrinsic[3:])) - 1.0) > 1e-3:
        found.append(ParameterError(
            "reference_extrinsic", "has a quaternion (qx, qy, qz, qw) that is not of unit "
            "length; give a rotation, e.g. [0.0, 0.0, 0.0, 1.0] for none"))
    if params.scale_source == "ground" and params.camera_height <= 0:
        found.append(ParameterError(
            "camera_height", "must be > 0 with scale_source ground: the camera's height (m) "
            "above the floor"))
    if params.cloud_max_range <= params.cloud_min_range:
        found.append(ParameterError(
            "cloud_max_range", f"({params.cloud_max_range}) must exceed cloud_min_range "
            f"({params.cloud_min_range})"))
    return found
