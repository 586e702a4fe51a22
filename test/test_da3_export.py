"""Depth Anything 3 export: the released key layout, the export command, upstream's goldens."""

from __future__ import annotations

import json
import math
from pathlib import Path
import struct
import time

import numpy as np
import pytest
import torch

from da3_fixtures import export_cli, GOLDEN_SIZE
from depth_anything_ros.export.checkpoint import CheckpointError
from depth_anything_ros.export.da3_checkpoint import load_da3
from depth_anything_ros.export.da3_models import DA3_MODELS

ALL_MODELS = ("da3metric-large", "da3mono-large", "da3-small", "da3-base")
# DA3-Small/Base store one LayerNorm once for four names (reference README, "Aliases").
SHARED_NORM = tuple(f"model.head.scratch.output_conv2_aux.{i}.2.{p}"
                    for i in (1, 2, 3) for p in ("weight", "bias"))


def _released_keys(reference: Path, model: str) -> list[tuple[str, list[int]]]:
    return [(key, shape) for key, shape in json.loads((reference / "keys.json").read_text())[model]]


def _header_only_checkpoint(folder: Path, layout: list[tuple[str, list[int]]],
                            model_name: str) -> Path:
    """Write a Hugging Face folder whose safetensors has this layout and all-zero data.

    The key check reads only the file's header, so a sparse file stands in for 1.3 GB of
    weights when the test is about the keys.
    """
    header, offset = {}, 0
    for key, shape in layout:
        size = 4 * math.prod(shape)
        header[key] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "model.safetensors", "wb") as handle:
        handle.write(struct.pack("<Q", len(raw)) + raw)
        handle.truncate(8 + len(raw) + offset)
    (folder / "config.json").write_text(json.dumps({"model_name": model_name}))
    return folder


def _relative(out: np.ndarray, ref: np.ndarray) -> float:
    """Largest error relative to each reference value (depth is positive: exp)."""
    return float((np.abs(out - ref) / np.abs(ref)).max())


def _of_range(out: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(out - ref).max() / (ref.max() - ref.min()))


@pytest.mark.parametrize("model", ALL_MODELS)
def test_module_keys_are_the_released_keys(da3_reference, model):
    with torch.device("meta"):  # shapes only
        ours = {f"model.{key}": list(value.shape)
                for key, value in DA3_MODELS[model].build(*GOLDEN_SIZE).state_dict().items()}
    released = dict(_released_keys(da3_reference, model))
    aliases = set(SHARED_NORM) if model in ("da3-small", "da3-base") else set()
    assert set(ours) == set(released) | aliases
    assert all(ours[key] == shape for key, shape in released.items())


@pytest.mark.parametrize("model", ALL_MODELS)
def test_every_released_key_loads_strictly(da3_reference, da3_checkpoint, model):
    """Every tensor of the file ends up in the module, aliases under all their names."""
    from safetensors import safe_open

    folder = da3_checkpoint(model)
    loaded = load_da3(model, folder, *GOLDEN_SIZE)
    state = loaded.model.state_dict()
    with safe_open(str(folder / "model.safetensors"), framework="pt") as stored:
        aliases = {k: v for k, v in (stored.metadata() or {}).items() if k.startswith("model.")}
        for key, _ in _released_keys(da3_reference, model):
            assert torch.equal(state[key.removeprefix("model.")], stored.get_tensor(key)), key
        for alias, target in aliases.items():
            assert torch.equal(state[alias.removeprefix("model.")], stored.get_tensor(target))
    assert len(state) == len(_released_keys(da3_reference, model)) + len(aliases)
    assert loaded.checkpoint_name == f"{model}/model.safetensors"
    assert loaded.description.model_name == model and loaded.description.family == "da3"


def test_missing_and_unexpected_keys_are_one_error_line(da3_reference, tmp_path):
    layout = _released_keys(da3_reference, "da3metric-large")
    dropped = "model.head.scratch.sky_output_conv2.2.bias"
    layout = [(k, s) for k, s in layout if k != dropped] + [("model.head.extra.weight", [4])]
    folder = _header_only_checkpoint(tmp_path / "ck", layout, "da3metric-large")
    result = export_cli("--model", "da3metric-large", "--checkpoint", str(folder),
                        "--output", str(tmp_path / "m.xml"), timeout=300)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith("depth_anything_export: error: ")
    assert f"1 missing (first: {dropped})" in lines[0]
    assert "1 unexpected (first: model.head.extra.weight)" in lines[0]
    assert not (tmp_path / "m.xml").exists()


def test_another_models_file_is_named(da3_reference, tmp_path):
    small = _header_only_checkpoint(tmp_path / "small", _released_keys(da3_reference, "da3-small"),
                                    "da3-small")
    with pytest.raises(CheckpointError, match="config.json says model_name 'da3-small' but "
                                              "--model is 'da3metric-large'"):
        load_da3("da3metric-large", small, *GOLDEN_SIZE)
    (small / "config.json").unlink()  # the bare file: only its keys can tell
    with pytest.raises(CheckpointError, match=r"missing .*unexpected .*looks like da3-small$"):
        load_da3("da3metric-large", small / "model.safetensors", *GOLDEN_SIZE)


def test_mono_and_metric_share_keys_so_config_json_decides(da3_reference, tmp_path):
    mono = _header_only_checkpoint(tmp_path / "mono",
                                   _released_keys(da3_reference, "da3mono-large"), "da3mono-large")
    with pytest.raises(CheckpointError, match="pass --model da3mono-large"):
        load_da3("da3metric-large", mono, *GOLDEN_SIZE)


def test_offline_download_fails_fast_naming_the_files(tmp_path):
    start = time.monotonic()
    result = export_cli("--model", "da3metric-large", "--output", str(tmp_path / "m.xml"),
                        timeout=60)
    elapsed = time.monotonic() - start
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert "model.safetensors" in lines[0] and "config.json" in lines[0]
    assert "https://huggingface.co/depth-anything/DA3METRIC-LARGE" in lines[0]
    assert "--checkpoint DIR" in lines[0]
    assert elapsed < 15, f"took {elapsed:.1f}s"


def test_v2_options_are_refused_with_a_da3_model(tmp_path):
    result = export_cli("--model", "da3mono-large", "--encoder", "vitl",
                        "--output", str(tmp_path / "m.xml"), timeout=60)
    assert result.returncode == 1
    assert "with --model da3mono-large the model name says it all" in result.stderr


def test_metric_ir_reproduces_upstream_depth_and_sky(da3_metric_ir, da3_golden):
    import openvino as ov

    golden = da3_golden("da3metric-large")
    compiled = ov.Core().compile_model(str(da3_metric_ir), "CPU",
                                       {"INFERENCE_PRECISION_HINT": "f32"})
    assert [port.get_any_name() for port in compiled.outputs] == ["depth", "sky"]
    outputs = compiled(golden["net_input"])
    depth, sky = outputs[0][0], outputs[1][0]
    depth_error, sky_error = _relative(depth, golden["depth"]), _of_range(sky, golden["sky"])
    print(f"Metric-Large FP32 IR vs upstream at 378x504: depth {depth_error:.1e} relative, "
          f"sky {sky_error:.1e} of range")
    # Reached here: depth 7.9e-06 of each value, sky 3.3e-06 of its range.
    assert depth_error <= 1e-4 and sky_error <= 1e-4


def test_metric_ir_metadata(da3_metric_ir):
    import openvino as ov

    from depth_anything_ros.inference.engine import read_metadata

    meta = read_metadata(ov.Core().read_model(str(da3_metric_ir)), da3_metric_ir)
    assert (meta.family, meta.model_name, meta.encoder, meta.depth_type) == \
        ("da3", "da3metric-large", "vitl", "metric")
    assert meta.outputs == (("depth", "focal_depth"), ("sky", "sky"))
    assert (meta.focal_reference, meta.sky_threshold, meta.max_depth) == (300.0, 0.3, 0.0)
    assert (meta.input_height, meta.input_width, meta.precision) == (*GOLDEN_SIZE, "fp32")
    assert meta.checkpoint_name == "da3metric-large/model.safetensors"
    assert len(meta.checkpoint_sha256) == 64


def test_mono_module_reproduces_upstream_depth_and_sky(da3_checkpoint, da3_golden):
    """Mono-Large at the torch level: the same network as the exported Metric-Large.

    Exporting a second Large model would cost two more minutes for the same graph.
    """
    golden = da3_golden("da3mono-large")
    model = load_da3("da3mono-large", da3_checkpoint("da3mono-large"), *GOLDEN_SIZE).model
    with torch.no_grad():
        depth, sky = (t[0].numpy() for t in model(torch.from_numpy(golden["net_input"])))
    depth_error, sky_error = _relative(depth, golden["depth"]), _of_range(sky, golden["sky"])
    print(f"Mono-Large module vs upstream: depth {depth_error:.1e} relative, "
          f"sky {sky_error:.1e} of range")
    # Same operations as upstream (ours: explicit softmax attention, upstream's fused SDPA).
    assert depth_error <= 1e-4 and sky_error <= 1e-4
