"""Per-layer times of an OpenVINO request (``PERF_COUNT``) and what each layer became.

A request's wall time mixes the layer of interest with input copies and precision
Reorders; the profile gives each layer of the compiled (runtime) graph its own time, so
a standalone FullyConnected or Softmax is timed exactly as the model's layers are.
The runtime graph says what the plugin compiled each node into (``layerType``, e.g. a
MatMul with constant weights becomes FullyConnected) and which original nodes it fused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Compile properties for a profiled model: the per-layer counters, and the engine's
# default hint so that the plugin picks the same kernels and threading as for the node.
PROFILED = {"PERF_COUNT": True, "PERFORMANCE_HINT": "LATENCY"}


@dataclass(frozen=True)
class Layer:
    layer_type: str           # runtime layerType: FullyConnected, Subgraph, Softmax ...
    kernel: str               # primitiveType, e.g. brgemm_avx512_amx_bf16
    fused: tuple[str, ...]    # original node names it executes
    input_shapes: tuple[tuple[int, ...] | None, ...]


def runtime_layers(compiled) -> dict[str, Layer]:
    """Return the compiled graph's layers by name (the names the profile uses)."""
    layers = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        fused = info["originalLayersNames"].astype(str)
        shapes = tuple(tuple(source.get_partial_shape().to_shape())
                       if source.get_partial_shape().is_static else None
                       for source in op.inputs())
        layers[op.get_friendly_name()] = Layer(
            info["layerType"].astype(str), info["primitiveType"].astype(str),
            tuple(name for name in fused.split(",") if name), shapes)
    return layers


class ProfiledRequest:
    """A callable infer request that keeps every call's per-layer times (ms).

    It is called like the other timed alternatives (``timing.measure_interleaved``), so
    its layers are timed in the same rounds, under the same background load.
    """

    def __init__(self, compiled, inputs: dict[int, np.ndarray]) -> None:
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self.inputs = inputs
        self.calls: list[dict[str, float]] = []

    def __call__(self) -> None:
        self.request.infer(self.inputs, share_inputs=True)
        self.calls.append({info.node_name: info.real_time.total_seconds() * 1e3
                           for info in self.request.get_profiling_info()
                           if info.real_time.total_seconds() > 0})

    def timed(self, runs: int) -> list[dict[str, float]]:
        """Return the last ``runs`` calls: the timed rounds, after the warm-up ones."""
        return self.calls[-runs:]

    def layer_ms(self, names: set[str], runs: int) -> list[float]:
        """Return the summed time of the layers ``names``, per timed call."""
        return [sum(ms for name, ms in call.items() if name in names)
                for call in self.timed(runs)]
