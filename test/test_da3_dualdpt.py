"""DA3 Small/Base network module (export/da3_dualdpt.py) against the goldens and its export.

Strict loading of every released key is test_da3_export's, for all four models; this file
checks what is particular to the DualDPT module: upstream's depth and confidence at the
golden size, its size guard, and that the exported IR computes what the module does.
"""

from __future__ import annotations

import numpy as np
import openvino as ov
import pytest
import torch

from da3_fixtures import GOLDEN_SIZE
from depth_anything_ros.export.da3_checkpoint import load_da3
from depth_anything_ros.export.da3_dualdpt import build_da3_dualdpt

EXPORT_SIZE = (140, 182)   # small and non-square: a wrong axis order would show


@pytest.fixture(scope="module")
def da3_small(da3_checkpoint) -> torch.nn.Module:
    return load_da3("da3-small", da3_checkpoint("da3-small"), *GOLDEN_SIZE).model


def test_reproduces_the_upstream_golden(da3_small, da3_golden):
    golden = da3_golden("da3-small")
    with torch.no_grad():
        depth, confidence = da3_small(torch.from_numpy(golden["net_input"]))
    for name, ours in (("depth", depth), ("depth_conf", confidence)):
        error = float(np.max(np.abs(ours[0].numpy() - golden[name]) / golden[name]))
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


def test_exported_ir_computes_what_the_module_does(da3_checkpoint, da3_ir):
    """depth_anything_export's FP32 IR, run in f32, against the module at the same size."""
    module = load_da3("da3-small", da3_checkpoint("da3-small"), *EXPORT_SIZE).model
    x = np.random.default_rng(1).normal(size=(1, 3, *EXPORT_SIZE)).astype(np.float32)
    with torch.no_grad():
        expected = [t.numpy() for t in module(torch.from_numpy(x))]
    compiled = ov.Core().compile_model(str(da3_ir("da3-small", EXPORT_SIZE, "fp32")), "CPU",
                                       {"INFERENCE_PRECISION_HINT": "f32"})
    outputs = compiled(x)
    for name, reference in zip(("depth", "confidence"), expected):
        ours = outputs[compiled.output(name)]
        assert ours.shape == (1, *EXPORT_SIZE)
        error = float(np.max(np.abs(ours - reference) / reference))
        print(f"{name}: OpenVINO vs torch max relative error {error:.1e}")
        assert error <= 1e-4  # 3.8e-6 here
