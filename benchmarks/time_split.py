"""Where our FP16 IR's frame time goes, by kind of layer, and which limit each kind is near.

OpenVINO's per-layer profile of the compiled graph is summed by what each layer is:
the fused attention (Q·Kᵀ, softmax and attention·V in one Subgraph), the Linear layers
(FullyConnected), the head's convolutions, element-wise work and norms, resizes, layout
changes. Each part with a compute bound is set against it: the FullyConnected layers
against the FC ceiling, the attention against its two matrix products at that ceiling
plus its exponentials at the softmax bound. A part near its bound will not get much
faster by tuning; only less work (fewer tokens: see network_sides) helps.
"""

from __future__ import annotations

from dataclasses import dataclass
import re

import numpy as np

from benchmarks.fc_ceiling import same_shape_ms
from benchmarks.layer_profile import Layer, ProfiledRequest, runtime_layers
from depth_anything_ros.inference.engine import DepthEngine

ATTENTION = "attention (Q·Kᵀ, softmax, ·V)"
FULLY_CONNECTED = "fully connected"
CONVOLUTION = "convolution"
CATEGORIES = (ATTENTION, FULLY_CONNECTED, CONVOLUTION, "element-wise and norms", "interpolate",
              "transpose", "reorder", "other")
_BY_TYPE = {
    "FullyConnected": FULLY_CONNECTED, "MatMul": ATTENTION, "Softmax": ATTENTION,
    "Convolution": CONVOLUTION, "ConvolutionBackpropData": CONVOLUTION,
    "Deconvolution": CONVOLUTION, "Subgraph": "element-wise and norms",
    "Eltwise": "element-wise and norms", "MVN": "element-wise and norms",
    "Interpolate": "interpolate", "Transpose": "transpose", "Reorder": "reorder"}
_BLOCK = re.compile(r"/blocks\.(\d+)/")


def category(layer: Layer) -> str:
    """Return the part of the frame a runtime layer belongs to.

    A layer that executes a Softmax is the attention, whatever the plugin fused around
    it; a MatMul left as such (both inputs activations) is one of its products.
    """
    if any("Softmax" in name for name in layer.fused):
        return ATTENTION
    return _BY_TYPE.get(layer.layer_type, "other")


def block_of(name: str) -> int | None:
    """Return the transformer block a layer name belongs to (DINOv2 names them)."""
    match = _BLOCK.search(name)
    return int(match.group(1)) if match else None


@dataclass
class ProfiledModel:
    request: ProfiledRequest
    layers: dict[str, Layer]
    execution: str


def profiled_model(engine: DepthEngine, camera: np.ndarray) -> ProfiledModel:
    """Compile the engine's graph for this camera as the engine does, plus PERF_COUNT."""
    height, width = camera.shape[:2]
    graph = engine.build_graph(height, width, "bgr", (height, width))
    compiled = engine.core.compile_model(graph, engine.device_name,
                                         {**engine.compile_properties(), "PERF_COUNT": True})
    execution = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    inputs = {0: engine.network_input(camera).copy()}
    return ProfiledModel(ProfiledRequest(compiled, inputs), runtime_layers(compiled), execution)


def split(layers: dict[str, Layer], calls: list[dict[str, float]]) -> dict:
    """Return the median ms per part and per attention block over the profiled calls.

    The share is of the median sum of all layer times (the frame as the profile sees it).
    """
    parts = np.zeros((len(calls), len(CATEGORIES)))
    blocks: dict[int, list[float]] = {}
    for index, call in enumerate(calls):
        for name, ms in call.items():
            layer = layers.get(name)
            part = category(layer) if layer else "other"
            parts[index, CATEGORIES.index(part)] += ms
            block = block_of(name)
            if part == ATTENTION and block is not None:
                blocks.setdefault(block, [0.0] * len(calls))[index] += ms
    total = float(np.median(parts.sum(axis=1)))
    medians = np.median(parts, axis=0)
    return {"total_ms": round(total, 2),
            "parts": [{"part": part, "ms": round(float(ms), 2), "share": round(ms / total, 4)}
                      for part, ms in zip(CATEGORIES, medians) if ms > 0],
            "attention_blocks_ms": [round(float(np.median(blocks[b])), 2)
                                    for b in sorted(blocks)]}


def limits(time_split: dict, flops: dict, ceiling: dict, softmax: dict | None) -> list[dict]:
    """Set each part with a compute bound against it (bound ms = work / best rate).

    ``time_split`` holds ``split``'s result and the ``execution`` precision; ``flops`` is
    ``FlopCount.to_json()``, ``ceiling`` ``fc_ceiling.summarize``'s, ``softmax``
    ``softmax_bound.summarize``'s.
    """
    measured = {part["part"]: part["ms"] for part in time_split["parts"]}
    rate = ceiling["gflops"].get(time_split["execution"])   # GFLOP/s
    if not rate:
        return []

    def at_ceiling(gflops: float) -> float:
        return gflops / rate * 1e3

    rows = [{"part": FULLY_CONNECTED, "measured_ms": measured.get(FULLY_CONNECTED),
             "work": f"{flops['fc_gflops']:.1f} GFLOP",
             "bound_ms": round(at_ceiling(flops["fc_gflops"]), 2),
             "bound": "FC FLOPs at the FC ceiling"}]
    same_shape = same_shape_ms(ceiling, time_split["execution"])
    if same_shape:
        rows.append({"part": FULLY_CONNECTED, "measured_ms": measured.get(FULLY_CONNECTED),
                     "work": f"{flops['fc_gflops']:.1f} GFLOP",
                     "bound_ms": round(same_shape, 2),
                     "bound": "each FC layer as fast as its shape alone"})
    matmuls = at_ceiling(flops["attention_gflops"])
    attention = {"part": ATTENTION, "measured_ms": measured.get(ATTENTION),
                 "work": f"{flops['attention_gflops']:.1f} GFLOP + "
                         f"{flops['exponentials'] / 1e6:.1f} M exp"}
    if softmax:
        rows.append({**attention, "bound_ms": softmax["bound_ms"],
                     "bound": "exponentials at the softmax bound"})
        rows.append({**attention, "bound_ms": round(matmuls + softmax["bound_ms"], 2),
                     "bound": "softmax bound + Q·Kᵀ and ·V FLOPs at the FC ceiling"})
    conv = flops["by_op"].get("Conv", 0.0) + flops["by_op"].get("ConvTranspose", 0.0)
    rows.append({"part": CONVOLUTION, "measured_ms": measured.get(CONVOLUTION),
                 "work": f"{conv:.1f} GFLOP", "bound_ms": round(at_ceiling(conv), 2),
                 "bound": "conv FLOPs at the FC ceiling"})
    for row in rows:
        ms = row["measured_ms"]
        row["measured_over_bound"] = round(ms / row["bound_ms"], 2) if ms and row["bound_ms"] \
            else None
    return rows
