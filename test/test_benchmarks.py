"""The benchmark CLI end to end on a tiny network: it runs, and its JSON holds real numbers.

Also the pieces the model section's limits are computed with, on inputs whose answer is
known by hand.
"""

from __future__ import annotations

import argparse
from collections import Counter
import json
import math
import os
from pathlib import Path
import subprocess
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
import pytest

from benchmarks.fc_ceiling import FcShape, model_fc_shapes, same_shape_ms
from benchmarks.flops import count_flops
from benchmarks.layer_profile import Layer
from benchmarks.network_sides import parse_sides, side_sizes, SIDES, tokens
from benchmarks.time_split import ATTENTION, category, FULLY_CONNECTED, limits, split

REPO = Path(__file__).resolve().parents[1]
# vits at 112x140: 8 x 10 patches + the class token, 6 heads, 12 blocks.
TOKENS, HEADS, BLOCKS, HIDDEN = 81, 6, 12, 384
# How the benchmark commands run: from the repository, this checkout first on the path.
_IN_REPO = {"cwd": REPO, "capture_output": True, "text": True,
            "env": dict(os.environ, PYTHONPATH=os.pathsep.join(
                filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))}


def test_quick_model_benchmark_writes_positive_timings(tmp_path: Path, synthetic_checkpoint):
    out = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--sections", "model",
         "--image-size", "112x140", "--side", "112", "--sides", "112,98",
         "--checkpoint", str(synthetic_checkpoint), "--cache", str(tmp_path / "cache"),
         "--out", str(out)],
        **_IN_REPO, timeout=400)
    assert run.returncode == 0, run.stderr[-3000:]

    results = json.loads((out / "results.json").read_text())
    section = results["model"]["112x140"]
    assert section["network_size"] == [112, 140]
    assert section["flops"]["gflops"] > 0
    rows = {row["key"]: row for row in section["rows"]}
    expected = {"pytorch", "onnxruntime", "ov_naive", "ours_fp32", "ours_fp16", "ours_int8",
                "ours_fp16_throughput", "ours_int8_throughput"}
    assert expected <= set(rows), sorted(rows)
    for key, row in rows.items():
        if key.endswith("_throughput"):
            assert row["fps"] > 0 and row["streams"] >= 1, row
        else:
            assert 0 < row["latency"]["median_ms"] <= row["latency"]["p90_ms"], row
            assert row["latency"]["runs"] == 3
        assert row["gflops_per_s"] > 0
    # FP16 storage computed at the same precision as FP32 barely changes the result;
    # the reference row is the FP32 IR computed in f32, held against itself.
    assert rows["ours_fp16"]["median_rel_error"] < 0.02
    reference = rows.get("ours_fp32_f32", rows["ours_fp32"])
    assert reference["execution"] == "f32" and reference["median_rel_error"] < 1e-6
    report = (out / "results.md").read_text()
    assert "### Model only" in report and "% of FC ceiling" in report
    assert (out / "results.png").stat().st_size > 10_000

    # Work counted from the ONNX: one exponential per attention score.
    flops = section["flops"]
    assert flops["exponentials"] == BLOCKS * HEADS * TOKENS**2
    assert flops["attention_gflops"] == pytest.approx(
        BLOCKS * 2 * 2 * HEADS * TOKENS**2 * (HIDDEN // HEADS) / 1e9, abs=1e-3)
    assert flops["fc_gflops"] == pytest.approx(
        BLOCKS * 2 * TOKENS * HIDDEN * (3 * HIDDEN + HIDDEN + 2 * 4 * HIDDEN) / 1e9, abs=1e-3)
    # The ceiling is FullyConnected layers at the model's own four shapes and a square one.
    shapes = section["fc_ceiling"]["shapes"]
    assert {row["layer_type"] for row in shapes} == {"FullyConnected"}
    model_shapes = {(81, 384, 1152): 12, (81, 384, 384): 12, (81, 384, 1536): 12,
                    (81, 1536, 384): 12, (2048, 2048, 2048): 0}
    for weights in ("f32", "fp16"):
        assert {(row["m"], row["k"], row["n"]): row["in_model"] for row in shapes
                if row["precision"] == "f32" and row["weights"] == weights} == model_shapes
    assert section["fc_ceiling"]["gflops"]["f32"] == max(
        row["gflops_best"] for row in shapes if row["precision"] == "f32") > 0
    softmax = section["softmax_bound"]
    assert softmax["exponentials"] == flops["exponentials"]
    blocks = [[1, 6, 81, 81], [1, 6, 32, 81], [1, 6, 64, 81]]
    assert [row["shape"] for row in softmax["rows"]] == blocks
    assert softmax["bound_ms"] > 0
    # Where the time goes: every transformer block's attention found by its layer names.
    time_split = section["time_split"]
    assert len(time_split["attention_blocks_ms"]) == BLOCKS
    parts = {part["part"]: part for part in time_split["parts"]}
    assert parts[ATTENTION]["ms"] > 0 and parts[FULLY_CONNECTED]["ms"] > 0
    assert all(0 < part["share"] <= 1 for part in parts.values())
    assert {row["part"] for row in time_split["limits"]} >= {ATTENTION, FULLY_CONNECTED}
    assert "Where the time goes" in report and "Which limit each part is near" in report

    sides = results["model_sides"]["rows"]
    assert [(row["side"], row["network_size"], row["tokens"]) for row in sides] == [
        (112, [112, 140], 81), (98, [98, 126], 64)]
    assert all(row["latency_fps"] > 0 and row["throughput_fps"] > 0 for row in sides)
    assert "by network short side" in report


def test_quick_model_benchmark_times_a_da3_model_beside_v2(tmp_path: Path, synthetic_checkpoint):
    """``--da3``: the DA3 model's own rows and per-layer split in the same run, no baselines."""
    out = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--sections", "model",
         "--image-size", "112x140", "--side", "112", "--da3", "da3-small",
         "--da3-long-side", "140", "--checkpoint", str(synthetic_checkpoint),
         "--cache", str(tmp_path / "cache"), "--out", str(out)],
        **_IN_REPO, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert set(results["model"]) == {"112x140", "da3-small 112x140"}
    section = results["model"]["da3-small 112x140"]
    assert section["model"] == "da3-small" and section["network_size"] == [112, 140]
    rows = {row["key"]: row for row in section["rows"]}
    assert {"ours_fp32", "ours_fp16", "ours_int8", "ours_fp16_throughput",
            "ours_int8_throughput"} <= set(rows)
    assert not {"pytorch", "onnxruntime", "ov_naive"} & set(rows)
    assert all(row["gflops_per_s"] > 0 for row in rows.values())
    assert len(section["time_split"]["attention_blocks_ms"]) == BLOCKS
    report = (out / "results.md").read_text()
    assert "### Model only: da3-small, camera 112x140" in report
    assert "No baselines for this model" in report


def test_int8_sweep_prints_a_row_per_variant(tmp_path: Path, synthetic_checkpoint):
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.int8_sweep", "--image-size", "112x140",
         "--side", "112", "--checkpoint", str(synthetic_checkpoint), "--only", "0", "5",
         "--runs", "2", "--held-out", "1", "--cache", str(tmp_path / "cache")],
        **_IN_REPO, timeout=400)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = [line.split("|")[1:-1] for line in run.stdout.splitlines()
            if line.startswith("| ") and "ms" not in line]
    names = [row[0].strip() for row in rows]
    assert names == ["our FP16 IR (device default precision)",
                     "NNCF defaults (transformer, mixed, SmoothQuant 0.95)",
                     "DPT head in float"], run.stdout
    for row in rows[1:]:
        median_ms, speedup, error = (float(row[i].strip(" %")) for i in (1, 2, 3))
        assert median_ms > 0 and speedup > 0 and 0 <= error < 20


def test_count_flops_splits_constant_weight_products_from_attention(tmp_path: Path):
    """A Linear layer (constant weight) and a product of two activations, then a Softmax."""
    rows, features, outputs = 1000, 1000, 500
    weight = numpy_helper.from_array(np.zeros((features, outputs), np.float32), "weight")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "weight"], ["linear"]),
         helper.make_node("Transpose", ["x"], ["x_t"], perm=[0, 2, 1]),
         helper.make_node("MatMul", ["x", "x_t"], ["scores"]),
         helper.make_node("Softmax", ["scores"], ["attention"], axis=-1)],
        "toy", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, rows, features])],
        [helper.make_tensor_value_info("linear", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("attention", TensorProto.FLOAT, None)], [weight])
    path = tmp_path / "toy.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    flops = count_flops(path)
    assert flops.fc_gflops == 2 * rows * features * outputs / 1e9           # 1.0
    assert flops.attention_gflops == 2 * rows * rows * features / 1e9       # 2.0
    assert flops.gflops == 3.0
    assert flops.exponentials == rows * rows
    assert flops.softmax_inputs == ((1, rows, rows),)


def _layer(layer_type: str, *fused: str, shapes=()) -> Layer:
    return Layer(layer_type, "kernel", fused, shapes)


def test_time_split_sums_parts_and_attention_blocks_by_layer_name():
    layers = {
        "/blocks.0/attn/MatMul_1": _layer("Subgraph", "MatMul_7", "Softmax_8",
                                          "/blocks.0/attn/MatMul_1"),
        "/blocks.1/attn/MatMul": _layer("MatMul", "/blocks.1/attn/MatMul"),
        "/blocks.1/attn/Softmax": _layer("Softmax", "/blocks.1/attn/Softmax"),
        "/blocks.0/attn/qkv/Add": _layer("FullyConnected", "/blocks.0/attn/qkv/Add"),
        "/blocks.0/norm1/LayerNormalization": _layer("Subgraph", "/blocks.0/norm1/Mul"),
        "/depth_head/Resize": _layer("Interpolate", "/depth_head/Resize"),
        "/Gather": _layer("Gather", "/Gather"),
    }
    assert category(layers["/blocks.0/attn/MatMul_1"]) == ATTENTION
    assert category(layers["/blocks.0/norm1/LayerNormalization"]) == "element-wise and norms"
    assert category(layers["/Gather"]) == "other"
    calls = [{"/blocks.0/attn/MatMul_1": 10.0, "/blocks.1/attn/MatMul": 2.0,
              "/blocks.1/attn/Softmax": 6.0, "/blocks.0/attn/qkv/Add": 12.0,
              "/blocks.0/norm1/LayerNormalization": 1.0, "/depth_head/Resize": 4.0,
              "/Gather": 5.0},
             {"/blocks.0/attn/MatMul_1": 14.0, "/blocks.1/attn/MatMul": 2.0,
              "/blocks.1/attn/Softmax": 10.0, "/blocks.0/attn/qkv/Add": 8.0,
              "/blocks.0/norm1/LayerNormalization": 1.0, "/depth_head/Resize": 4.0,
              "/Gather": 5.0},
             {"/blocks.0/attn/MatMul_1": 12.0, "/blocks.1/attn/MatMul": 2.0,
              "/blocks.1/attn/Softmax": 8.0, "/blocks.0/attn/qkv/Add": 10.0,
              "/blocks.0/norm1/LayerNormalization": 1.0, "/depth_head/Resize": 4.0,
              "/Gather": 5.0}]
    result = split(layers, calls)
    parts = {part["part"]: (part["ms"], part["share"]) for part in result["parts"]}
    assert result["total_ms"] == 42.0          # the middle call's sum
    assert parts[ATTENTION] == (22.0, round(22 / 42, 4))
    assert parts[FULLY_CONNECTED] == (10.0, round(10 / 42, 4))
    assert parts["interpolate"] == (4.0, round(4 / 42, 4))
    assert result["attention_blocks_ms"] == [12.0, 10.0]   # block 0, block 1 (2 + 8)


def test_limits_set_each_part_against_work_over_the_best_rate():
    time_split = {"execution": "bf16", "parts": [
        {"part": FULLY_CONNECTED, "ms": 90.0}, {"part": ATTENTION, "ms": 80.0},
        {"part": "convolution", "ms": 30.0}]}
    flops = {"fc_gflops": 60.0, "attention_gflops": 40.0, "exponentials": 200_000_000,
             "by_op": {"Conv": 9.0, "ConvTranspose": 1.0}}
    shape = {"m": 1814, "k": 384, "n": 1536}
    ceiling = {"gflops": {"f32": 100.0, "bf16": 1000.0}, "shapes": [
        {"precision": "bf16", "in_model": 12, "best_ms": 5.0, **shape},
        {"precision": "bf16", "in_model": 0, "best_ms": 99.0, "m": 2048, "k": 2048, "n": 2048},
        {"precision": "f32", "in_model": 12, "best_ms": 50.0, **shape}]}
    rows = limits(time_split, flops, ceiling, {"bound_ms": 50.0})
    bounds = [(row["part"], row["bound_ms"], row["measured_over_bound"]) for row in rows]
    assert bounds == [(FULLY_CONNECTED, 60.0, 1.5),     # 60 GFLOP at 1000 GFLOP/s
                      (FULLY_CONNECTED, 60.0, 1.5),     # 12 layers x 5 ms
                      (ATTENTION, 50.0, 1.6),           # the softmax bound alone
                      (ATTENTION, 90.0, 0.89),          # + 40 GFLOP at 1000 GFLOP/s
                      ("convolution", 10.0, 3.0)]
    assert limits({**time_split, "execution": "f16"}, flops, ceiling, None) == []


def test_model_fc_shapes_counts_tokens_by_inputs_by_outputs():
    layers = {"qkv": _layer("FullyConnected", shapes=((1, 1814, 384), (1152, 384), (1152,))),
              "fc2": _layer("FullyConnected", shapes=((1, 1814, 1536), (384, 1536))),
              "fc2b": _layer("FullyConnected", shapes=((1, 1814, 1536), (384, 1536))),
              "conv": _layer("Convolution", shapes=((1, 3, 518, 686), (384, 3, 14, 14)))}
    assert model_fc_shapes(layers) == Counter({FcShape(1814, 384, 1152): 1,
                                               FcShape(1814, 1536, 384): 2})
    assert FcShape(1814, 384, 1152).flops == 2 * 1814 * 384 * 1152
    fc2 = {"m": 1814, "k": 1536, "n": 384, "in_model": 2}
    rows = [{"precision": "bf16", "weights": "f32", "best_ms": 1.5, **fc2},
            {"precision": "bf16", "weights": "fp16", "best_ms": 1.2, **fc2},   # the faster
            {"precision": "f32", "weights": "fp16", "best_ms": 0.1, **fc2},
            {"precision": "bf16", "weights": "f32", "best_ms": 9.0, "m": 2048, "k": 2048,
             "n": 2048, "in_model": 0}]
    assert same_shape_ms({"shapes": rows}, "bf16") == pytest.approx(2.4)


def test_vga_sides_follow_the_upstream_rule_in_multiples_of_14():
    sizes = side_sizes((480, 640), list(SIDES))
    assert sizes == [(518, 686), (448, 602), (392, 518), (336, 448), (280, 378)]
    assert [tokens(size) for size in sizes] == [1814, 1377, 1037, 769, 541]
    assert all(h % 14 == 0 and w % 14 == 0 and math.isclose(w / h, 4 / 3, rel_tol=0.03)
               for h, w in sizes)
    assert parse_sides("518, 448,280") == [518, 448, 280]
    for text in ("500", "518,abc", "", "-14"):
        with pytest.raises(argparse.ArgumentTypeError, match="sides"):
            parse_sides(text)


def test_multicam_table_compares_one_node_with_processes_at_each_count():
    from benchmarks.multicam import _ratios, multicam_table

    def run(mode: str, cameras: int, rate: float, rss: float) -> dict:
        camera = {"output_hz": rate / cameras, "frames": 10, "p95_ms": 900.0,
                  "latency": {"median_ms": 800.0}}
        return {"mode": mode, "cameras": cameras, "total_output_hz": rate, "fairness": 0.95,
                "per_camera": [camera] * cameras, "cpu_outside_inference_ms_per_frame": 4.0,
                "rss_mb": rss}

    runs = [run("one node", 2, 3.0, 600.0), run("processes", 2, 2.0, 1000.0)]
    ratios = _ratios(runs)
    assert ratios == {"2": {"outputs": 1.5, "rss": 0.6}}
    table = multicam_table({"camera_size": [480, 640], "rate_hz": 30.0, "duration_s": 30.0,
                            "streams": 2, "inference_cpu_ms": {"LATENCY": 900.0},
                            "runs": runs, "ratios": ratios})
    assert "| 2 | one node | 3.00 | 0.95 | 800 / 900, 800 / 900 | 4.0 | 600 |" in table
    assert "| 2 | 1.50 | 0.60 |" in table
