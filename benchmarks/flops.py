"""Counting the network's multiply-accumulate work from its ONNX graph.

Only MatMul, Gemm, Conv and ConvTranspose are counted (2 FLOPs per multiply-add): they
are well over 95% of a ViT + DPT head. Softmax, LayerNorm, GELU, resizes and adds are
left out, so the count is a slight underestimate and achieved GFLOP/s slightly
pessimistic. Shapes come from ONNX shape inference with data propagation, which also
resolves the batch dimension the class-token Expand leaves symbolic.

The MatMuls are split by what OpenVINO makes of them, because each kind has its own
limit: a MatMul with a constant second input (the Linear layers) becomes a
FullyConnected layer with weights packed at compile time, one of two activations
(Q·Kᵀ and attention·V) stays a MatMul inside the fused attention. The Softmax inputs are
counted too: one exponential per element, the attention's other cost.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from pathlib import Path

import onnx
from onnx import shape_inference

COUNTED_OPS = ("MatMul", "Gemm", "Conv", "ConvTranspose")


@dataclass(frozen=True)
class FlopCount:
    gflops: float
    by_op: dict[str, float]   # GFLOPs per op type
    fc_gflops: float = 0.0          # MatMul with a constant weight, and Gemm
    attention_gflops: float = 0.0   # MatMul of two activations
    exponentials: int = 0           # elements entering a Softmax
    softmax_inputs: tuple[tuple[int, ...], ...] = ()  # one shape per Softmax node

    def to_json(self) -> dict:
        return {"gflops": self.gflops, "by_op": self.by_op, "fc_gflops": self.fc_gflops,
                "attention_gflops": self.attention_gflops, "exponentials": self.exponentials,
                "softmax_inputs": [list(shape) for shape in self.softmax_inputs]}


def _shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    known: dict[str, list[int]] = {}
    graph = model.graph
    for value in list(graph.value_info) + list(graph.input) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            known[value.name] = [d.dim_value for d in dims]
    for init in graph.initializer:
        known[init.name] = list(init.dims)
    return known


def _attr(node: onnx.NodeProto, name: str, default):
    for attribute in node.attribute:
        if attribute.name == name:
            return onnx.helper.get_attribute_value(attribute)
    return default


def node_flops(node: onnx.NodeProto, shapes: dict[str, list[int]]) -> float | None:
    """Return the FLOPs of one node, or None when a shape it needs is unknown."""
    try:
        if node.op_type == "MatMul":
            a, _ = shapes[node.input[0]], shapes[node.input[1]]
            out = shapes[node.output[0]]
            k = a[-1]
            # out holds the broadcast batch dims and M x N; each element needs K MACs.
            return 2.0 * math.prod(out) * k
        if node.op_type == "Gemm":
            a = shapes[node.input[0]]
            out = shapes[node.output[0]]
            k = a[0] if _attr(node, "transA", 0) else a[1]
            return 2.0 * math.prod(out) * k
        if node.op_type == "Conv":
            weight = shapes[node.input[1]]      # (Cout, Cin/groups, kh, kw)
            out = shapes[node.output[0]]        # (N, Cout, H, W)
            return 2.0 * math.prod(out) * math.prod(weight[1:])
        if node.op_type == "ConvTranspose":
            x = shapes[node.input[0]]           # (N, Cin, H, W)
            weight = shapes[node.input[1]]      # (Cin, Cout/groups, kh, kw)
            return 2.0 * math.prod(x) * math.prod(weight[1:])
    except KeyError:
        return None
    return 0.0


def count_flops(onnx_path: Path) -> FlopCount:
    """Raise ValueError if a counted node or a Softmax has shapes inference could not resolve.

    A silent zero there would make the achieved GFLOP/s look wrong without saying why.
    """
    model = onnx.load(str(onnx_path), load_external_data=False)
    inferred = shape_inference.infer_shapes(model, data_prop=True)
    shapes = _shapes(inferred)
    if any(node.op_type in COUNTED_OPS and node_flops(node, shapes) is None
           for node in inferred.graph.node):
        shapes.update(_shapes_by_running(onnx_path))
    constants = {init.name for init in inferred.graph.initializer}
    constants.update(out for node in inferred.graph.node if node.op_type == "Constant"
                     for out in node.output)
    by_op = dict.fromkeys(COUNTED_OPS, 0.0)
    attention = 0.0
    softmax_inputs: list[tuple[int, ...]] = []
    for node in inferred.graph.node:
        if node.op_type == "Softmax":
            if node.input[0] not in shapes:
                raise _unresolved(onnx_path, node)
            softmax_inputs.append(tuple(shapes[node.input[0]]))
        if node.op_type not in COUNTED_OPS:
            continue
        flops = node_flops(node, shapes)
        if flops is None:
            raise _unresolved(onnx_path, node)
        by_op[node.op_type] += flops
        if node.op_type == "MatMul" and node.input[1] not in constants:
            attention += flops
    fc = by_op["MatMul"] - attention + by_op["Gemm"]
    by_op = {op: round(v / 1e9, 3) for op, v in by_op.items() if v}
    return FlopCount(round(sum(by_op.values()), 3), by_op, round(fc / 1e9, 3),
                     round(attention / 1e9, 3),
                     sum(math.prod(shape) for shape in softmax_inputs), tuple(softmax_inputs))


def _shapes_by_running(onnx_path: Path) -> dict[str, list[int]]:
    """Return every tensor's shape from one ONNX Runtime run on zeros.

    ONNX shape inference stops at ops whose output shape depends on values it does not
    propagate (DA3-Small's camera-token Expand, say); at a fixed export size one run knows.
    """
    import numpy as np
    import onnxruntime

    model = onnx.load(str(onnx_path))
    listed = {output.name for output in model.graph.output}
    for node in model.graph.node:
        model.graph.output.extend(onnx.ValueInfoProto(name=name) for name in node.output
                                  if name not in listed)
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    feeds = {i.name: np.zeros(i.shape, np.float32) for i in session.get_inputs()}
    names = [output.name for output in session.get_outputs()]
    return {name: list(value.shape) for name, value in zip(names, session.run(None, feeds))}


def _unresolved(onnx_path: Path, node: onnx.NodeProto) -> ValueError:
    return ValueError(f"{onnx_path.name}: no static shape for {node.op_type} node "
                      f"{node.name!r}; export at a fixed size")
