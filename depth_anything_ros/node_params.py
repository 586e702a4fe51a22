"""The node's ROS parameters: one table of defaults, descriptors and rules.

``NodeParams`` is that table: each field's default is the declared default (and what
config/depth.yaml lists), its metadata the descriptor text, numeric range and allowed
values. Declaring, start-up validation and runtime validation all read it, so they
cannot disagree.

Parameters that only take effect when something is rebuilt (the compiled model, the
subscriptions, the diagnostics timer) are read-only: rclpy refuses to change them at
runtime with a reason instead of accepting a value that would silently do nothing.
Restart the node to change them. Everything that is read per frame may change live.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import dataclass
from typing import Any, Callable, Optional

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node
from rclpy.parameter import Parameter

from depth_anything_ros.colorize import COLORMAPS

PACKAGE = "depth_anything_ros"

PERFORMANCE_HINTS = ("LATENCY", "THROUGHPUT")
INFERENCE_PRECISIONS = ("", "f32", "bf16", "f16")
INPUT_TRANSPORTS = ("raw", "compressed")
QOS_CHOICES = ("sensor_data", "reliable")
OUTPUT_RESOLUTIONS = ("camera", "network")


class ParameterError(ValueError):
    """A parameter value the node cannot run with; the message names the parameter."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"parameter '{name}' {reason}")
        self.name = name
        self.reason = reason


def _param(default: Any, description: str, *, read_only: bool = False,
           value_range: Optional[tuple[float, float]] = None,
           choices: Optional[tuple[str, ...]] = None) -> Any:
    return dataclasses.field(default=default, metadata={
        "description": description, "read_only": read_only,
        "range": value_range, "choices": choices})


# Upper bounds of the numeric ranges are sanity limits, not tuning advice.
@dataclass(frozen=True)
class NodeParams:
    model_path: str = _param(
        "", "OpenVINO IR (.xml) made by depth_anything_export, or a folder holding one model "
        "(several precisions of it, named *_fp16/*_int8/*_fp32.xml: the fastest for this CPU "
        "is loaded, int8 unless the CPU has AMX). Empty: the models folder installed with the "
        "package (share/depth_anything_ros/models).",
        read_only=True)
    device: str = _param(
        "CPU", "OpenVINO device: CPU, GPU, NPU, AUTO, or a device name such as GPU.1.",
        read_only=True)
    performance_hint: str = _param(
        "LATENCY", "OpenVINO PERFORMANCE_HINT.", read_only=True, choices=PERFORMANCE_HINTS)
    inference_precision: str = _param(
        "", "OpenVINO INFERENCE_PRECISION_HINT; empty keeps the device default "
        "(bf16 on CPUs with AMX/AVX512-BF16, use f32 for exact results).",
        read_only=True, choices=INFERENCE_PRECISIONS)
    cache_dir: str = _param(
        "", "Compiled-model cache folder; empty: ~/.cache/depth_anything_ros/ov_cache, "
        "'none' disables caching.", read_only=True)
    num_streams: int = _param(
        0, "OpenVINO NUM_STREAMS; 0 leaves it to the performance hint.",
        read_only=True, value_range=(0, 256))
    num_threads: int = _param(
        0, "OpenVINO INFERENCE_NUM_THREADS; 0 leaves it to the device plugin.",
        read_only=True, value_range=(0, 1024))
    inference_workers: int = _param(
        1, "Frames inferred at the same time, each taking the newest frame when it is free. "
        "1: lowest latency. With performance_hint THROUGHPUT, set it to the number of streams "
        "(NUM_STREAMS, or the log line at the first frame) for more frames per second at a "
        "higher latency; an output finished after a newer frame's is dropped, never "
        "published out of order.", read_only=True, value_range=(1, 16))
    allow_cpu_fallback: bool = _param(
        False, "Run on CPU when the requested device is absent instead of failing.",
        read_only=True)
    input_transport: str = _param(
        "raw", "raw: subscribe 'image' (sensor_msgs/Image); compressed: subscribe "
        "'image/compressed' (sensor_msgs/CompressedImage).", read_only=True,
        choices=INPUT_TRANSPORTS)
    input_qos: str = _param(
        "sensor_data", "Image and camera_info subscriptions: sensor_data (best effort, depth 1; "
        "connects to reliable and best-effort cameras) or reliable.", read_only=True,
        choices=QOS_CHOICES)
    input_queue_depth: int = _param(
        1, "Images and CameraInfo each input subscription holds while the node is busy. 1: "
        "lowest latency; a frame arriving before the previous one was taken replaces it "
        "uncounted. More (with input_qos reliable): every frame reaches the node, which counts "
        "the superseded ones as dropped, at the cost of up to that many frame periods of "
        "latency whenever the node falls behind the camera.", read_only=True,
        value_range=(1, 100))
    output_qos: str = _param(
        "reliable", "Output publishers: reliable (depth 1; what rviz2 and depth_image_proc "
        "subscribe with) or sensor_data (best effort, depth 1).", read_only=True,
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
        0.0, "Relative models only: metric depth = 1 / (relative_scale * output + "
        "relative_shift). 0 publishes no metric outputs (depth/image, depth/points).",
        value_range=(0.0, 1.0e6))
    relative_shift: float = _param(
        0.0, "Relative models only: see relative_scale.", value_range=(-1.0e6, 1.0e6))
    fallback_hfov_deg: float = _param(
        60.0, "Horizontal field of view (degrees) assumed until a calibrated CameraInfo "
        "arrives.", value_range=(1.0, 179.0))
    max_pixels: int = _param(
        16777216, "Input images with more pixels are rejected (protects against corrupt "
        "headers).", value_range=(1, 1 << 28))
    diagnostics_period: float = _param(
        1.0, "Seconds between /diagnostics reports.", read_only=True,
        value_range=(0.1, 60.0))


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(NodeParams)}


def defaults() -> dict[str, Any]:
    """Declared default of every parameter, as config/depth.yaml must list them."""
    return {name: f.default for name, f in FIELDS.items()}


def descriptor(name: str) -> ParameterDescriptor:
    meta = FIELDS[name].metadata
    desc = ParameterDescriptor(name=name, description=meta["description"],
                               read_only=meta["read_only"])
    if meta["choices"] is not None:
        desc.additional_constraints = "one of: " + ", ".join(repr(c) for c in meta["choices"])
    low_high = meta["range"]
    if low_high is not None:
        low, high = low_high
        if isinstance(FIELDS[name].default, int):
            desc.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
        else:
            desc.floating_point_range = [
                FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)]
    return desc


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
    if params.cloud_max_range <= params.cloud_min_range:
        found.append(ParameterError(
            "cloud_max_range", f"({params.cloud_max_range}) must exceed cloud_min_range "
            f"({params.cloud_min_range})"))
    return found


def effective_model_path(model_path: str) -> str:
    """The path the engine should load: ``model_path``, or the package's models folder."""
    if model_path:
        return os.path.expanduser(model_path)
    from ament_index_python.packages import get_package_share_directory
    try:
        share = get_package_share_directory(PACKAGE)
    except (LookupError, OSError):
        raise ParameterError(
            "model_path", f"is empty and package '{PACKAGE}' is not installed in a sourced "
            "workspace, so there is no default models folder; pass "
            "-p model_path:=/path/to/model.xml") from None
    return os.path.join(share, "models")


def _type_name(value: Any) -> str:
    return {bool: "a boolean (true/false)", int: "an integer", float:
            "a floating-point number (write 10.0, not 10)", str: "a string"}[type(value)]


def unknown_overrides(node: Node) -> list[str]:
    """Values given for parameters this node does not have, e.g. a misspelt YAML key.

    rclpy drops them without a word; a robot then runs with a default the user believes
    they changed. (``_parameter_overrides`` is the only place rclpy keeps them.)
    """
    given = getattr(node, "_parameter_overrides", {})
    lines = []
    for name in sorted(given):
        if node.has_parameter(name) or name.startswith("qos_overrides."):
            continue
        close = difflib.get_close_matches(name, FIELDS, n=1)
        lines.append(f"'{name}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    return lines


class ParameterStore:
    """Declares the node's parameters and keeps a validated snapshot of their values.

    The inference thread reads ``current`` once per frame; replacing the frozen
    snapshot is a single reference swap, so it never sees half an update.
    """

    def __init__(self, node: Node,
                 on_change: Optional[Callable[[NodeParams, NodeParams], None]] = None) -> None:
        """Declare every parameter and validate the start values.

        Raises ParameterError naming the first bad parameter. The validating callback
        is registered only after declaring, because rclpy runs on-set callbacks for
        each declaration and cross-parameter rules would see half-declared state.
        """
        self._node = node
        self._on_change = on_change
        values = {}
        for name, field in FIELDS.items():
            try:
                values[name] = node.declare_parameter(name, field.default, descriptor(name)).value
            except InvalidParameterTypeException:
                raise ParameterError(
                    name, f"has the wrong type; expected {_type_name(field.default)}") from None
            except InvalidParameterValueException:
                low, high = field.metadata["range"]
                raise ParameterError(
                    name, f"is out of range; must be within [{low}, {high}]") from None
        params = NodeParams(**values)
        found = problems(params)
        if found:
            raise found[0]
        self.current = params
        self.unknown = unknown_overrides(node)
        node.add_on_set_parameters_callback(self._validate)
        node.add_post_set_parameters_callback(self._apply)

    def _changes(self, parameters: list[Parameter]) -> dict[str, Any]:
        return {p.name: p.value for p in parameters if p.name in FIELDS}

    def _validate(self, parameters: list[Parameter]) -> SetParametersResult:
        changes = self._changes(parameters)
        if not changes:
            return SetParametersResult(successful=True)
        found = problems(dataclasses.replace(self.current, **changes))
        if found:
            return SetParametersResult(successful=False, reason="; ".join(str(e) for e in found))
        return SetParametersResult(successful=True)

    def _apply(self, parameters: list[Parameter]) -> None:
        changes = self._changes(parameters)
        if not changes:
            return
        previous = self.current
        self.current = dataclasses.replace(previous, **changes)
        if self._on_change is not None:
            self._on_change(previous, self.current)
