"""The export layer against the official key layout and the upstream golden outputs."""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import torch

from depth_anything_ros.export.checkpoint import (build_model, CheckpointError, load_strict,
                                                  read_state_dict)
from depth_anything_ros.export.network import DepthAnythingV2
from depth_anything_ros.inference.metadata import ModelMetadata
from scenes import scene


def _ir_output(xml: Path, net_input: np.ndarray) -> np.ndarray:
    import openvino as ov
    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return compiled(net_input)[0]


def _relative_error(out: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(out - ref).max() / (ref.max() - ref.min()))


@pytest.mark.parametrize("encoder", ["vits", "vitb", "vitl"])
def test_module_keys_are_the_official_keys(shared_reference, encoder):
    official = json.loads((shared_reference / "official_keys.json").read_text())[encoder]
    with torch.device("meta"):  # shapes only: vitl would need 1.3 GB otherwise
        ours = DepthAnythingV2(encoder).state_dict()
    assert [(k, list(v.shape)) for k, v in ours.items()] == [(k, s) for k, s in official]


def test_synthetic_checkpoint_loads_strictly(synthetic_checkpoint, golden):
    model = build_model("vits", synthetic_checkpoint, None).model
    with torch.no_grad():
        out = model(torch.from_numpy(golden["net_input"])).numpy()
    # Same operations as upstream on the same CPU: reached 0.0 here.
    assert _relative_error(out, golden["net_output"]) <= 1e-5


def test_wrong_encoder_names_first_mismatches(synthetic_checkpoint):
    state = read_state_dict(synthetic_checkpoint)
    with pytest.raises(CheckpointError, match=r"wrong shape \(first: pretrained\.cls_token.*"
                                              r"looks like encoder 'vits'"):
        load_strict(DepthAnythingV2("vitb"), state, "ck.pth")
    state["extra.key"] = torch.zeros(1)
    del state["pretrained.norm.bias"]
    with pytest.raises(CheckpointError, match=r"1 missing \(first: pretrained\.norm\.bias\); "
                                              r"1 unexpected \(first: extra\.key\)"):
        load_strict(DepthAnythingV2("vits"), state, "ck.pth")


@pytest.mark.parametrize("precision,tolerance", [("fp32", 1e-3), ("fp16", 2e-2)])
def test_ir_reproduces_golden_network_output(export_ir, golden, precision, tolerance):
    xml = export_ir((518, 686), precision)  # non-square: the traced size must be honoured
    error = _relative_error(_ir_output(xml, golden["net_input"]), golden["net_output"])
    print(f"{precision} IR vs upstream at 518x686: max error {error:.2e} of range")
    assert error <= tolerance


def test_non_square_export_matches_pytorch(export_ir, synthetic_checkpoint):
    size = (364, 504)
    xml = export_ir(size, "fp32")
    net_input = np.random.default_rng(1).normal(size=(1, 3, *size)).astype(np.float32)
    with torch.no_grad():
        ref = build_model("vits", synthetic_checkpoint, None).model(
            torch.from_numpy(net_input)).numpy()
    assert _ir_output(xml, net_input).shape == (1, *size)
    assert _relative_error(_ir_output(xml, net_input), ref) <= 1e-3


def test_metric_head_is_sigmoid_times_max_depth(export_ir, synthetic_checkpoint):
    size = (140, 182)
    net_input = np.random.default_rng(2).normal(size=(1, 3, *size)).astype(np.float32)
    relative = build_model("vits", synthetic_checkpoint, None).model
    metric = build_model("vits", synthetic_checkpoint, 20.0).model
    with torch.no_grad():
        # Same weights: the relative output is ReLU(x) and the metric one sigmoid(x)*20.
        rel = relative(torch.from_numpy(net_input))
        met = metric(torch.from_numpy(net_input))
    active = rel > 0
    assert active.float().mean() > 0.5
    torch.testing.assert_close(met[active], torch.sigmoid(rel[active]) * 20.0, atol=1e-4, rtol=0)
    assert float(met.min()) >= 0 and float(met.max()) <= 20.0
    xml = export_ir(size, "fp32", max_depth=20.0)
    assert _relative_error(_ir_output(xml, net_input), met.numpy()) <= 1e-3
    import openvino as ov
    from depth_anything_ros.inference.engine import read_metadata
    meta = read_metadata(ov.Core().read_model(str(xml)), xml)
    assert (meta.depth_type, meta.max_depth, meta.input_height, meta.input_width) == \
        ("metric", 20.0, 140, 182)


def test_int8_is_half_of_fp16_and_runs(export_ir, tmp_path_factory):
    calib = tmp_path_factory.mktemp("calibration")
    for seed in range(6):
        cv2.imwrite(str(calib / f"scene{seed}.png"), scene(seed))
    size = (182, 238)
    int8 = export_ir(size, "int8", calibration=(calib,))
    fp16 = export_ir(size, "fp16")
    fp32 = export_ir(size, "fp32")
    ratio = int8.with_suffix(".bin").stat().st_size / fp16.with_suffix(".bin").stat().st_size
    from depth_anything_ros.inference.preprocess import reference_tensor
    held_out = reference_tensor(scene(100), *size)
    ref, out = _ir_output(fp32, held_out), _ir_output(int8, held_out)
    median = float(np.median(np.abs(out - ref) / np.maximum(np.abs(ref), 1e-6)))
    print(f"int8 size {ratio:.2f} x fp16; median relative error vs fp32 {median:.3%}")
    assert 0.4 <= ratio <= 0.65
    assert np.isfinite(out).all() and median < 0.2


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "depth_anything_ros.export.cli", *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_offline_download_fails_fast_with_guidance(tmp_path):
    start = time.monotonic()
    result = _cli("--encoder", "vits", "--metric", "indoor", "--output", str(tmp_path / "m.xml"),
                  timeout=60)
    elapsed = time.monotonic() - start
    assert result.returncode == 1
    assert "depth_anything_v2_metric_hypersim_vits.pth" in result.stderr
    assert "--checkpoint" in result.stderr and "Traceback" not in result.stderr
    assert elapsed < 15, f"took {elapsed:.1f}s"


def test_giant_has_no_public_weights(tmp_path):
    result = _cli("--encoder", "vitg", "--output", str(tmp_path / "m.xml"), timeout=60)
    assert result.returncode == 1 and "no public weights" in result.stderr


def test_int8_without_calibration_is_refused(tmp_path, synthetic_checkpoint):
    result = _cli("--checkpoint", str(synthetic_checkpoint), "--precision", "int8",
                  "--output", str(tmp_path / "m.xml"), timeout=60)
    assert result.returncode == 1 and "--calibration-images" in result.stderr


def test_cli_exports_verified_ir_from_camera_size(tmp_path, synthetic_checkpoint):
    out = tmp_path / "cam.xml"
    result = _cli("--checkpoint", str(synthetic_checkpoint), "--image-size", "120x160",
                  "--metric", "outdoor", "--output", str(out), "--verify", "--keep-onnx")
    assert result.returncode == 0, result.stderr
    assert "verify: max error" in result.stdout
    assert out.with_suffix(".onnx").is_file()
    import openvino as ov
    from depth_anything_ros.inference.engine import read_metadata
    meta: ModelMetadata = read_metadata(ov.Core().read_model(str(out)), out)
    assert (meta.input_height, meta.input_width, meta.max_depth) == (518, 686, 80.0)
    assert meta.checkpoint_name == synthetic_checkpoint.name and len(meta.checkpoint_sha256) == 64


def test_transformers_format_maps_to_official_keys():
    transformers = pytest.importorskip("transformers")
    from depth_anything_ros.export.hf_format import to_official
    backbone = transformers.Dinov2Config(
        hidden_size=384, num_hidden_layers=12, num_attention_heads=6, image_size=518,
        patch_size=14, out_indices=[3, 6, 9, 12], apply_layernorm=True,
        reshape_hidden_states=False)
    config = transformers.DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=384, fusion_hidden_size=64,
        neck_hidden_sizes=[48, 96, 192, 384], patch_size=14, depth_estimation_type="metric",
        max_depth=20)
    hf = transformers.DepthAnythingForDepthEstimation(config).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        for param in hf.parameters():
            param.add_(0.02 * torch.randn_like(param))
    ours = DepthAnythingV2("vits", max_depth=20.0)
    load_strict(ours, to_official(hf.state_dict()), "transformers")
    x = torch.randn(1, 3, 196, 252)
    with torch.no_grad():
        expected = hf(pixel_values=x).predicted_depth
        got = ours(x)
    # transformers sizes the position grid interpolation differently: ~2e-5 of the output
    # magnitude here (the saturated sigmoid makes the output range itself tiny).
    assert float((got - expected).abs().max()) <= 1e-4 * float(expected.abs().max())


def _quantized_ops(xml: Path) -> set[str]:
    """Names of the ops whose inputs NNCF quantized (consumers of a FakeQuantize)."""
    import openvino as ov

    quantized = set()
    for op in ov.Core().read_model(str(xml)).get_ops():
        if op.get_type_name() == "FakeQuantize":
            for target in op.output(0).get_target_inputs():
                quantized.add(target.get_node().get_friendly_name())
    return quantized


def test_int8_float_head_leaves_the_depth_head_unquantized(tmp_path, synthetic_checkpoint):
    calib = tmp_path / "calibration"
    calib.mkdir()
    for seed in range(3):
        cv2.imwrite(str(calib / f"scene{seed}.png"), scene(seed))
    outputs = {}
    for name, extra in (("default", ()), ("float_head", ("--int8-float-head",))):
        outputs[name] = tmp_path / name / "m.xml"
        result = _cli("--checkpoint", str(synthetic_checkpoint), "-h", "70", "-w", "98",
                      "--precision", "int8", "--calibration-images", str(calib),
                      "--output", str(outputs[name]), *extra)
        assert result.returncode == 0, result.stderr
    default, float_head = (_quantized_ops(outputs[n]) for n in ("default", "float_head"))
    assert any(name.startswith("/depth_head/") for name in default)
    assert not any(name.startswith("/depth_head/") for name in float_head)
    assert any(name.startswith("/blocks.") for name in float_head)
