"""The practical ceiling for the model's GFLOP/s: FullyConnected layers timed alone.

The model's Linear layers compile to FullyConnected layers whose constant weights the CPU
plugin converts and packs once, at compile time. The ceiling is that same kind of layer on
its own: a Parameter times a Constant at each of the model's own FC shapes (tokens x
hidden -> out) and a square 2048 one. The weights are stored both as f32 and as f16 the
way our FP16 IR stores them (``save_model(compress_to_fp16=True)``), because the plugin
picks its kernel by that too (OpenVINO 2026.4 in f32: MLAS's GEMM for f32 weights,
oneDNN's for the IR's compressed ones). Each is timed by its layer time in the profile,
as the model's layers are, so neither the request's input copy nor the f32 -> bf16
Reorder of its input counts; the best rate of the interleaved rounds and of the variants
is the ceiling. (The earlier ceiling, a 2048^3 product timed by the whole request, also
compiled to FullyConnected, but paid both.) Each runtime layerType is checked: a node that
did not become FullyConnected would be timing some other kernel.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
import math
from pathlib import Path
import tempfile
from typing import Iterable

import numpy as np

from benchmarks.layer_profile import Layer, PROFILED, ProfiledRequest, runtime_layers

SQUARE = 2048
PRECISIONS = ("f32", "bf16")
WEIGHTS = ("f32", "fp16")   # as stored: f32 Constants, or f16 ones as in our FP16 IR


@dataclass(frozen=True, order=True)
class FcShape:
    m: int   # rows: tokens
    k: int   # inputs
    n: int   # outputs

    @property
    def flops(self) -> float:
        return 2.0 * self.m * self.k * self.n


@dataclass
class FcCall:
    precision: str
    weights: str
    shape: FcShape
    request: ProfiledRequest
    layer: str                # the FullyConnected layer's name in the profile
    kernel: str


def model_fc_shapes(layers: dict[str, Layer]) -> Counter[FcShape]:
    """Count the model's FullyConnected layers per (tokens, inputs, outputs) shape."""
    shapes: Counter[FcShape] = Counter()
    for layer in layers.values():
        if layer.layer_type != "FullyConnected" or len(layer.input_shapes) < 2:
            continue
        data, weight = layer.input_shapes[:2]
        if data is None or weight is None:
            continue
        shapes[FcShape(math.prod(data[:-1]), data[-1], math.prod(weight) // data[-1])] += 1
    return shapes


def _precision(compiled) -> str:
    return compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()


def fc_calls(shapes: Iterable[FcShape]) -> list[FcCall]:
    """Compile one FullyConnected per shape (and the square one), weights and precision.

    bf16 only where the CPU computes it: elsewhere the hint falls back to f32 and would
    repeat the f32 rows.
    """
    import openvino as ov
    import openvino.opset13 as ops

    rng = np.random.default_rng(0)
    core = ov.Core()
    calls: list[FcCall] = []
    for shape in sorted({*shapes, FcShape(SQUARE, SQUARE, SQUARE)}):
        data = ops.parameter([1, shape.m, shape.k], ov.Type.f32)
        weights = ops.constant(rng.standard_normal((shape.n, shape.k), np.float32))
        model = ov.Model([ops.matmul(data, weights, False, True)], [data])
        inputs = {0: rng.standard_normal((1, shape.m, shape.k), np.float32)}
        for stored in WEIGHTS:
            with tempfile.TemporaryDirectory() as folder:
                xml = str(Path(folder) / "fc.xml")
                ov.save_model(model, xml, compress_to_fp16=stored == "fp16")
                for hint in PRECISIONS:
                    compiled = core.compile_model(core.read_model(xml), "CPU",
                                                  {**PROFILED, "INFERENCE_PRECISION_HINT": hint})
                    if _precision(compiled) == hint:
                        calls.append(_fc_call(compiled, hint, stored, shape, inputs))
    return calls


def _fc_call(compiled, precision: str, weights: str, shape: FcShape,
             inputs: dict[int, np.ndarray]) -> FcCall:
    layers = runtime_layers(compiled)
    fc = [name for name, layer in layers.items() if layer.layer_type == "FullyConnected"]
    if len(fc) != 1:
        kinds = sorted({layer.layer_type for layer in layers.values()})
        raise RuntimeError(f"the {shape} ceiling compiled to {kinds}, not one "
                           "FullyConnected layer: it would not time the model's kernel")
    return FcCall(precision, weights, shape, ProfiledRequest(compiled, inputs), fc[0],
                  layers[fc[0]].kernel)


def summarize(calls: list[FcCall], runs: int, in_model: Counter[FcShape]) -> dict:
    """Return the ceiling per precision (best GFLOP/s of any shape) and every shape's rates."""
    rows = []
    for call in calls:
        ms = call.request.layer_ms({call.layer}, runs)
        best, median = min(ms), float(np.median(ms))
        shape = call.shape
        rows.append({"precision": call.precision, "weights": call.weights,
                     "m": shape.m, "k": shape.k, "n": shape.n,
                     "in_model": in_model.get(shape, 0), "layer_type": "FullyConnected",
                     "kernel": call.kernel, "best_ms": round(best, 3),
                     "median_ms": round(median, 3),
                     "gflops_best": round(shape.flops / best / 1e6, 1),
                     "gflops_median": round(shape.flops / median / 1e6, 1)})
    ceiling: dict[str, float] = {}
    for row in rows:
        ceiling[row["precision"]] = max(ceiling.get(row["precision"], 0.0), row["gflops_best"])
    return {"gflops": ceiling, "shapes": rows}


def same_shape_ms(ceiling: dict, precision: str) -> float | None:
    """Return the model's FC layers' time if each ran as fast as its shape does alone.

    With the faster of the weight storages for each shape.
    """
    best: dict[tuple[int, int, int], tuple[int, float]] = {}
    for row in ceiling["shapes"]:
        if row["precision"] == precision and row["in_model"]:
            key = (row["m"], row["k"], row["n"])
            ms = min(row["best_ms"], best.get(key, (0, row["best_ms"]))[1])
            best[key] = (row["in_model"], ms)
    return sum(count * ms for count, ms in best.values()) if best else None
