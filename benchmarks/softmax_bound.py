"""The attention's softmax as a bound of its own: one exponential per attention score.

At 518x686 vits scores 6 heads x 1814^2 token pairs in each of 12 blocks, about 237 M
exponentials per frame, and no matrix unit computes them: the vector units do, whatever
the precision. A model holding only a Softmax over a Parameter of the attention's shape
[1, heads, tokens, tokens] times that work alone (its layer time, so the input copy does
not count). The fused attention never holds the whole score tensor (79 MB in f32 at that
size) but works through blocks of query rows, so the softmax is also timed over such
blocks ([1, heads, rows, tokens]); which is faster depends on the caches, so the best
rate of any of them, over the frame's exponentials, is the bound.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
import math

import numpy as np

from benchmarks.layer_profile import PROFILED, ProfiledRequest, runtime_layers

QUERY_BLOCKS = (32, 64, 256)


@dataclass
class SoftmaxCall:
    shape: tuple[int, ...]
    attention: tuple[int, ...]   # the Softmax input in the model this is a block of
    request: ProfiledRequest
    layer: str
    kernel: str


def block_shapes(attention: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Return the attention shape and its blocks of query rows (those smaller than it)."""
    rows = attention[-2]
    return [attention] + [(*attention[:-2], block, attention[-1])
                          for block in QUERY_BLOCKS if block < rows]


def softmax_calls(softmax_inputs: tuple[tuple[int, ...], ...]) -> list[SoftmaxCall]:
    """Compile a Softmax over the last axis for each distinct input shape and its blocks.

    At the device's default precision, as the model runs.
    """
    import openvino as ov
    import openvino.opset13 as ops

    rng = np.random.default_rng(0)
    core = ov.Core()
    calls = []
    for attention in sorted(set(softmax_inputs)):
        for shape in block_shapes(attention):
            scores = ops.parameter(list(shape), ov.Type.f32)
            compiled = core.compile_model(ov.Model([ops.softmax(scores, -1)], [scores]), "CPU",
                                          PROFILED)
            layers = runtime_layers(compiled)
            softmax = [name for name, layer in layers.items() if layer.layer_type == "Softmax"]
            if len(softmax) != 1:
                raise RuntimeError(f"a Softmax over {shape} compiled to "
                                   f"{sorted({layer.layer_type for layer in layers.values()})}")
            calls.append(SoftmaxCall(shape, attention, ProfiledRequest(
                compiled, {0: rng.standard_normal(shape, np.float32)}), softmax[0],
                layers[softmax[0]].kernel))
    return calls


def summarize(calls: list[SoftmaxCall], runs: int,
              softmax_inputs: tuple[tuple[int, ...], ...]) -> dict:
    """Return each block's rate and the frame's softmax bound.

    Also the time of the model's Softmax layers if each ran as the whole attention-shaped
    one does alone.
    """
    layers = Counter(softmax_inputs)
    rows = []
    bound_ms = full_shape_ms = 0.0
    for attention, count in sorted(layers.items()):
        best_rate = 0.0
        for call in (c for c in calls if c.attention == attention):
            ms = call.request.layer_ms({call.layer}, runs)
            best = min(ms)
            rate = math.prod(call.shape) / best / 1e6   # G elements per second
            best_rate = max(best_rate, rate)
            if call.shape == attention:
                full_shape_ms += count * best
            rows.append({"shape": list(call.shape), "attention": list(attention),
                         "layers": count, "kernel": call.kernel, "best_ms": round(best, 3),
                         "median_ms": round(float(np.median(ms)), 3),
                         "gexp_per_s": round(rate, 3)})
        bound_ms += count * math.prod(attention) / best_rate / 1e6
    return {"exponentials": sum(math.prod(shape) for shape in softmax_inputs),
            "rows": rows, "bound_ms": round(bound_ms, 2),
            "full_shape_ms": round(full_shape_ms, 2)}
