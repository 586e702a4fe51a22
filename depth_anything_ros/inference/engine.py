"""OpenVINO inference for Depth Anything V2 and 3 IRs: camera u8 image in, named maps out.

No ROS and no torch here, so the node, the standalone CLI and the benchmarks share it.
Colour order, ImageNet normalisation and the bilinear resize back to the output size are
compiled into the graph for the camera's size. The one step left on the host is the
resize to the network size. V2: bicubic, done by OpenCV in float into a reused buffer: on
the 2-core AVX-512 machine OpenVINO's cubic Interpolate took 11.4 ms of a 245 ms request
at 480x640 -> 518x686, OpenCV 1 ms, which brought our whole request from 0.94x to 1.00x
the speed of a bare `ovc` IR's network call (benchmarks/README.md). DA3: upstream's uint8
INTER_AREA / INTER_CUBIC resizes (inference/preprocess.py ``da3_resize``), so the graph
takes u8 pixels at the network size. A camera already at the network size feeds its u8
pixels to the graph directly.

Every output of the IR (depth; DA3's sky or confidence) is resized back the same way,
bilinear with aligned corners as upstream V2 resizes its depth (upstream DA3 does not
resize back at all). Sky is a score, resized like the others; thresholding it at the
IR's ``sky_threshold`` comes after, at the output size.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
from pathlib import Path
import threading
import xml.etree.ElementTree as ElementTree

import cv2
import numpy as np
import openvino as ov
import openvino.opset13 as ops
from openvino.preprocess import ColorFormat, PrePostProcessor

from depth_anything_ros.inference import precision_choice
from depth_anything_ros.inference.metadata import MetadataError, ModelMetadata, RT_INFO_SECTION
from depth_anything_ros.inference.preprocess import da3_resize

BUILD_HINT = ("build one with: depth_anything_export --encoder vits --metric indoor "
              "--checkpoint depth_anything_v2_metric_hypersim_vits.pth --image-size 480x640 "
              "--output <folder>/vits_indoor.xml (README: 'Export models')")
DEFAULT_CACHE = Path.home() / ".cache" / "depth_anything_ros" / "ov_cache"
# Compiled models kept at once by default. A camera shows one size, two with
# output_resolution changes; the bound stops a stream of ever new sizes from holding a
# compiled copy of the weights for each. A node serving several cameras raises it.
MAX_COMPILED = 4


class ModelLoadError(RuntimeError):
    """The model cannot be used; the message says what to do about it."""


@dataclass(frozen=True)
class EngineConfig:
    model_path: str
    device: str = "CPU"
    performance_hint: str = "LATENCY"     # LATENCY | THROUGHPUT
    inference_precision: str = ""         # "" = device default (bf16 on AMX), f32, bf16, f16
    cache_dir: str = ""                   # "" = ~/.cache/depth_anything_ros/ov_cache, "none" = off
    num_streams: int = 0                  # 0 = plugin default for the hint
    num_threads: int = 0                  # 0 = plugin default
    allow_cpu_fallback: bool = False


def resolve_model_path(path: str, device: str = "CPU") -> tuple[Path, str]:
    """Return the IR to load, and how it was chosen.

    ``path`` is a file, or a folder (the package's installed models folder) holding one IR
    or precisions of one model.
    """
    candidate = Path(path).expanduser()
    how = "model_path"
    if candidate.is_dir():
        candidate, how = _pick_in_folder(candidate, device)
    if not candidate.is_file():
        raise ModelLoadError(f"model file {candidate} does not exist; {BUILD_HINT}")
    if candidate.suffix != ".xml":
        raise ModelLoadError(f"{candidate} is not an OpenVINO IR (.xml); {BUILD_HINT}")
    try:  # the root tag only: OpenVINO's own error for other XML names no reason
        with open(candidate, "rb") as stream:
            root = next(ElementTree.iterparse(stream, events=("start",)))[1].tag
    except (ElementTree.ParseError, StopIteration) as exc:
        raise ModelLoadError(f"cannot read {candidate} as an OpenVINO IR (not XML: {exc}); "
                             f"{BUILD_HINT}") from None
    if root != "net":
        raise ModelLoadError(f"cannot read {candidate} as an OpenVINO IR (root element "
                             f"<{root}>, expected <net>); {BUILD_HINT}")
    if not candidate.with_suffix(".bin").is_file():
        raise ModelLoadError(f"{candidate.with_suffix('.bin')} (the IR's weights) is missing; "
                             "copy it beside the .xml or re-export")
    return candidate, how


def _pick_in_folder(folder: Path, device: str) -> tuple[Path, str]:
    found = sorted(folder.glob("*.xml"))
    if len(found) == 1:
        return found[0], f"the only model in {folder}"
    if not found:
        raise ModelLoadError(f"no model (.xml) in {folder}; {BUILD_HINT}")
    choice = precision_choice.choose(found, device)
    if choice is None:
        names = ", ".join(p.name for p in found)
        raise ModelLoadError(f"{folder} holds several models ({names}); "
                             "set model_path to one of them")
    return choice


def openvino_reason(exc: Exception) -> str:
    """Return the lines of an OpenVINO error that say what went wrong.

    The 'Exception from src/...cpp:NN' and 'Check ... failed at' frames around them are left
    out.
    """
    lines = [line.strip() for line in str(exc).splitlines()]
    useful = [line for line in lines
              if line and not line.startswith(("Exception from ", "Check '"))]
    return " ".join(useful) or (lines[0] if lines else type(exc).__name__)


def read_metadata(model: ov.Model, path: Path) -> ModelMetadata:
    if not model.has_rt_info([RT_INFO_SECTION]):
        raise ModelLoadError(
            f"{path} has no '{RT_INFO_SECTION}' metadata (encoder, depth_type, max_depth, "
            f"input_height, input_width): it was not made by depth_anything_export; {BUILD_HINT}")
    section = model.get_rt_info()[RT_INFO_SECTION]
    values = {key: str(section[key].astype(str)) for key in section}
    try:
        return ModelMetadata.from_rt_info(values)
    except MetadataError as exc:
        raise ModelLoadError(f"{path}: {exc}") from exc


def _graph_key(height: int, width: int, order: str,
               output_size: tuple[int, int] | None) -> tuple:
    """One compiled graph per input size, colour order and output size (None = input)."""
    return (height, width, order, output_size or (height, width))


class DepthEngine:
    """One IR, compiled lazily per (input size, colour order, output size)."""

    def __init__(self, config: EngineConfig, core: ov.Core | None = None,
                 max_compiled: int = MAX_COMPILED) -> None:
        self.config = config
        self.max_compiled = max(max_compiled, MAX_COMPILED)
        self.model_path, self.model_choice = resolve_model_path(config.model_path,
                                                                config.device)
        self.core = core or ov.Core()
        try:
            self._model = self.core.read_model(str(self.model_path))
        except RuntimeError as exc:
            raise ModelLoadError(f"cannot read {self.model_path} as an OpenVINO IR "
                                 f"({openvino_reason(exc)}); {BUILD_HINT}") from exc
        self.metadata = read_metadata(self._model, self.model_path)
        self._check_outputs()
        self.device_name = self._pick_device(config.device, config.allow_cpu_fallback)
        cache = config.cache_dir or str(DEFAULT_CACHE)
        if cache.lower() != "none":
            os.makedirs(cache, exist_ok=True)
            self.core.set_property({"CACHE_DIR": cache})
        self._compiled: dict[tuple, ov.CompiledModel] = {}
        # Keyed by graph key + lane: each thread that infers concurrently uses its own
        # lane, i.e. its own request and host buffers.
        self._requests: dict[tuple, ov.InferRequest] = {}
        # Host buffers of the float resize per (camera size, lane): /255 image, network input.
        self._buffers: dict[tuple, tuple[np.ndarray, ...]] = {}
        self._lock = threading.Lock()  # compiling and creating requests, not inferring

    @property
    def network_size(self) -> tuple[int, int]:
        return self.metadata.input_height, self.metadata.input_width

    @property
    def output_names(self) -> tuple[str, ...]:
        """Return the names ``infer_all`` returns, in graph output order ("depth" first)."""
        return self.metadata.output_names

    @property
    def resizes_u8(self) -> bool:
        """Whether the host resize is DA3's, in uint8 (else V2's bicubic in float)."""
        return self.metadata.family == "da3"

    def _check_outputs(self) -> None:
        count = len(self._model.outputs)
        if count != len(self.output_names):
            raise ModelLoadError(f"{self.model_path} has {count} outputs but its metadata names "
                                 f"{len(self.output_names)} ({', '.join(self.output_names)}); "
                                 f"re-export it. {BUILD_HINT}")

    def _pick_device(self, device: str, allow_cpu_fallback: bool) -> str:
        available = self.core.available_devices
        base = device.split(":")[0].split(".")[0]
        if base in ("AUTO", "MULTI", "HETERO") or any(d.startswith(base) for d in available):
            return device
        if allow_cpu_fallback:
            return "CPU"
        raise ModelLoadError(f"device '{device}' is not available; OpenVINO sees "
                             f"{', '.join(available) or 'no devices'} (set device to one of "
                             "them, or allow_cpu_fallback: true)")

    def compile_properties(self) -> dict[str, str]:
        cfg = self.config
        props = {"PERFORMANCE_HINT": cfg.performance_hint}
        if cfg.inference_precision:
            props["INFERENCE_PRECISION_HINT"] = cfg.inference_precision
        if cfg.num_streams:
            props["NUM_STREAMS"] = str(cfg.num_streams)
        if cfg.num_threads and self.device_name == "CPU":
            props["INFERENCE_NUM_THREADS"] = str(cfg.num_threads)
        return props

    def resizes_on_host(self, height: int, width: int) -> bool:
        """Whether a camera of this size is resized to the network size before the graph.

        Then the graph's input is that float image, not the camera's u8 one.
        """
        return (height, width) != self.network_size

    def build_graph(self, height: int, width: int, order: str,
                    output_size: tuple[int, int]) -> ov.Model:
        """Return the IR with the camera's NHWC image as input.

        The input is u8, or float /255 at network size when resized on the host;
        normalisation is in the graph; the output is resized.
        """
        meta = self.metadata
        model = self._model.clone()
        ppp = PrePostProcessor(model)
        step = ppp.input()
        colour = ColorFormat.BGR if order == "bgr" else ColorFormat.RGB
        if self.resizes_on_host(height, width) and not self.resizes_u8:
            step.tensor().set_element_type(ov.Type.f32).set_layout(ov.Layout("NHWC")) \
                .set_shape([1, meta.input_height, meta.input_width, 3]).set_color_format(colour)
            unit = 1.0
        else:
            step.tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")) \
                .set_shape([1, meta.input_height, meta.input_width, 3]).set_color_format(colour)
            unit = 255.0
        step.model().set_layout(ov.Layout("NCHW"))
        step.preprocess().convert_element_type(ov.Type.f32).convert_color(ColorFormat.RGB) \
            .mean([unit * m for m in meta.mean]).scale([unit * s for s in meta.std])
        return self._resize_output(ppp.build(), output_size)

    def network_input(self, pixels: np.ndarray, lane: int = 0) -> np.ndarray:
        """Return what the compiled graph for this camera size takes.

        The u8 image itself; for V2 it /255 and bicubic-resized in float as upstream does
        (so the overshoot past [0, 1] is kept); for DA3 resized in u8 as upstream does. The
        result is written into buffers the lane reuses frame after frame.
        """
        height, width = pixels.shape[:2]
        if not self.resizes_on_host(height, width):
            return np.ascontiguousarray(pixels)[None]
        if self.resizes_u8:
            key = (height, width, lane)
            if key not in self._buffers:
                self._buffers[key] = (np.empty((*self.network_size, 3), np.uint8),)
            return da3_resize(pixels, *self.network_size, out=self._buffers[key][0])[None]
        buffers = self._buffers.get((height, width, lane))
        if buffers is None:
            buffers = (np.empty((height, width, 3), np.float32),
                       np.empty((*self.network_size, 3), np.float32))
            self._buffers[(height, width, lane)] = buffers
        scaled, resized = buffers
        np.multiply(pixels, np.float32(1.0 / 255.0), out=scaled)
        cv2.resize(scaled, self.network_size[::-1], dst=resized,
                   interpolation=cv2.INTER_CUBIC)
        return resized[None]

    def _resize_output(self, model: ov.Model, size: tuple[int, int]) -> ov.Model:
        """Append upstream's bilinear, align_corners resize of each (1,h,w) to ``size``."""
        results = []
        for result, name in zip(model.get_results(), self.output_names):
            planes = ops.unsqueeze(result.input_value(0),
                                   ops.constant(np.array([1], np.int64)))
            resized = ops.interpolate(
                planes, ops.constant(np.array(size, np.int64)), mode="linear",
                shape_calculation_mode="sizes", coordinate_transformation_mode="align_corners",
                axes=ops.constant(np.array([2, 3], np.int64)))
            out = ops.squeeze(resized, ops.constant(np.array([0, 1], np.int64)))
            out.output(0).get_tensor().set_names({name})
            results.append(ops.result(out))
        return ov.Model(results, model.get_parameters(), "depth_anything")

    def compiled(self, height: int, width: int, order: str = "bgr",
                 output_size: tuple[int, int] | None = None) -> ov.CompiledModel:
        if order not in ("bgr", "rgb"):
            raise ValueError(f"order must be 'bgr' or 'rgb', got {order!r}")
        key = _graph_key(height, width, order, output_size)
        with self._lock:
            if key not in self._compiled:
                self._evict_to(self.max_compiled - 1)
                graph = self.build_graph(height, width, order, key[3])
                try:
                    self._compiled[key] = self.core.compile_model(graph, self.device_name,
                                                                  self.compile_properties())
                except RuntimeError as exc:
                    raise ModelLoadError(f"cannot compile {self.model_path.name} on "
                                         f"{self.device_name}: {openvino_reason(exc)}") from exc
            return self._compiled[key]

    def _evict_to(self, count: int) -> None:
        """Drop the oldest compiled graphs (insertion order) with their requests.

        Also drop the host buffers of camera sizes no graph uses any more.
        """
        while len(self._compiled) > count:
            stale = next(iter(self._compiled))
            del self._compiled[stale]
            for key in [k for k in self._requests if k[:4] == stale]:
                del self._requests[key]
            sizes = {key[:2] for key in self._compiled}
            for key in [k for k in self._buffers if k[:2] not in sizes]:
                del self._buffers[key]

    def warmup(self, height: int, width: int, order: str = "bgr",
               output_size: tuple[int, int] | None = None) -> None:
        self.infer(np.zeros((height, width, 3), np.uint8), order, output_size)

    def request(self, height: int, width: int, order: str = "bgr",
                output_size: tuple[int, int] | None = None, lane: int = 0) -> ov.InferRequest:
        key = (*_graph_key(height, width, order, output_size), lane)
        compiled = self.compiled(height, width, order, output_size)
        with self._lock:
            if key not in self._requests:
                self._requests[key] = compiled.create_infer_request()
            return self._requests[key]

    def infer(self, pixels: np.ndarray, order: str = "bgr",
              output_size: tuple[int, int] | None = None, lane: int = 0) -> np.ndarray:
        """(H,W,3) uint8 -> float32 depth of ``output_size`` (default: the image size).

        What ``metadata.output_meanings`` says of the first output: metres for V2 metric
        models, relative inverse depth for V2 relative ones, DA3's depth. The returned
        array is owned by the caller (copied out of the request's buffer). Threads may
        infer at the same time if each passes its own ``lane``; with the THROUGHPUT hint
        the device then runs them in parallel streams.
        """
        return self._run(pixels, order, output_size, lane).get_output_tensor(0).data.copy()

    def infer_all(self, pixels: np.ndarray, order: str = "bgr",
                  output_size: tuple[int, int] | None = None,
                  lane: int = 0) -> dict[str, np.ndarray]:
        """Like ``infer``, returning every output by name (``output_names``).

        Each (output_size) float32 array is what the IR's metadata says it is
        (``metadata.output_meanings``): e.g. DA3 Metric's ``depth`` in units of
        ``inference/focal.py``'s factor and its ``sky`` score.
        """
        request = self._run(pixels, order, output_size, lane)
        return {name: request.get_output_tensor(index).data.copy()
                for index, name in enumerate(self.output_names)}

    def _run(self, pixels: np.ndarray, order: str, output_size: tuple[int, int] | None,
             lane: int) -> ov.InferRequest:
        if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
            raise ValueError(f"expected (H,W,3) uint8, got {pixels.shape} {pixels.dtype}")
        height, width = pixels.shape[:2]
        request = self.request(height, width, order, output_size, lane)
        request.infer({0: self.network_input(pixels, lane)}, share_inputs=True)
        return request
