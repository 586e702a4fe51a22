"""DA3 Small/Base network module against the released key layout and the upstream goldens.

Synthetic checkpoints come from test/reference/da3/make_checkpoint.py (the generator the
goldens were made with), written as upstream's hub files are: ``model.``-prefixed keys,
the shared LayerNorm stored once and its other names in the file's metadata.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
import warnings

import numpy as np
import pytest
import torch

from depth_anything_ros.export.da3_dualdpt import build_da3_dualdpt

DA3_REFERENCE = Path(__file__).resolve().parent / "reference" / "da3"
GOLDEN_SIZE = (378, 504)
EXPORT_SIZE = (140, 182)   # small and non-square: a wrong axis order would show


@pytest.fixture(scope="session")
def da3_generator():
    spec = importlib.util.spec_from_file_location("da3_make_checkpoint",
                                                  DA3_REFERENCE / "make_checkpoint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture(scope="session")
def da3_safetensors(da3_generator, tmp_path_factory):
    """Model name -> seed-0 ``model.safetensors`` written as make_checkpoint.py writes it."""
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("da3_checkpoints")
    files = {}
    for model in ("da3-small", "da3-base"):
        files[model] = folder / f"{model}.safetensors"
        save_file(da3_generator.synthetic_state_dict(model, 0), str(files[model]),
                  metadata=da3_generator.aliases(model) or None)
    return files


def _read_released(path: Path) -> dict[str, torch.Tensor]:
    """Keys without ``model.``, every name the metadata records filled from its stored one."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    state = load_file(str(path))
    with safe_open(str(path), "pt") as handle:
        for dropped, stored in (handle.metadata() or {}).items():
            state[dropped] = state[stored]
    return {key.removeprefix("model."): tensor for key, tensor in state.items()}


@pytest.fixture(scope="session")
def da3_small(da3_safetensors) -> torch.nn.Module:
    model = build_da3_dualdpt("da3-small", *GOLDEN_SIZE)
    model.load_state_dict(_read_released(da3_safetensors["da3-small"]), strict=True)
    return model


@pytest.mark.parametrize("model", ["da3-small", "da3-base"])
def test_every_released_key_loads_strictly(model, da3_safetensors):
    released = json.loads((DA3_REFERENCE / "keys.json").read_text())[model]
    state = _read_released(da3_safetensors[model])
    assert len(released) == 437 and len(state) == 437 + 6  # four names of one LayerNorm
    network = build_da3_dualdpt(model, *EXPORT_SIZE)
    network.load_state_dict(state, strict=True)  # no missing, unexpected or mis-shaped key
    with torch.no_grad():
        depth, confidence = network(torch.zeros(1, 3, *EXPORT_SIZE))
    assert depth.shape == confidence.shape == (1, *EXPORT_SIZE)
    assert float(depth.min()) > 0 and float(confidence.min()) > 1


def test_reproduces_the_upstream_golden(da3_small):
    with np.load(DA3_REFERENCE / "golden_da3-small_seed0.npz") as data:
        golden = {key: data[key][0] for key in ("net_input", "depth", "depth_conf")}
    with torch.no_grad():
        depth, confidence = da3_small(torch.from_numpy(golden["net_input"]))
    for name, ours in (("depth", depth), ("depth_conf", confidence)):
        error = float(np.max(np.abs(ours.numpy() - golden[name]) / golden[name]))
        print(f"{name}: max relative error {error:.1e} vs upstream at 378x504")
        # Upstream's operations in f32, but plain attention for its fused kernel: 2.8e-6 here.
        assert error <= 1e-4


def test_rejects_another_input_size(da3_small):
    with pytest.raises(ValueError, match=r"built for 378x504 input"):
        da3_small(torch.zeros(1, 3, *EXPORT_SIZE))


def test_build_rejects_unknown_model_and_size():
    with pytest.raises(ValueError, match=r"unknown DualDPT model 'da3-large'"):
        build_da3_dualdpt("da3-large", *EXPORT_SIZE)
    with pytest.raises(ValueError, match=r"multiples of 14"):
        build_da3_dualdpt("da3-small", 140, 180)


def test_onnx_and_openvino_match_pytorch(da3_safetensors, tmp_path):
    """Exported as export/export.py exports V2 (legacy tracer, opset 17), run in f32."""
    import openvino as ov

    model = build_da3_dualdpt("da3-small", *EXPORT_SIZE)
    model.load_state_dict(_read_released(da3_safetensors["da3-small"]), strict=True)
    x = torch.from_numpy(np.random.default_rng(1).normal(size=(1, 3, *EXPORT_SIZE))
                         .astype(np.float32))
    onnx_path = tmp_path / "da3-small.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        expected = [t.numpy() for t in model(x)]
        torch.onnx.export(model, (x,), str(onnx_path), input_names=["image"],
                          output_names=["depth", "confidence"], opset_version=17, dynamo=False,
                          do_constant_folding=True)
    compiled = ov.Core().compile_model(ov.convert_model(str(onnx_path)), "CPU",
                                       {"INFERENCE_PRECISION_HINT": "f32"})
    outputs = compiled(x.numpy())
    for name, reference in zip(("depth", "confidence"), expected):
        ours = outputs[compiled.output(name)]
        assert ours.shape == (1, *EXPORT_SIZE)
        error = float(np.max(np.abs(ours - reference) / reference))
        print(f"{name}: OpenVINO vs torch max relative error {error:.1e}")
        assert error <= 1e-4  # 3.8e-6 here
