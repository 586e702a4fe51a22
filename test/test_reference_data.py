"""The reference data in test/reference and the synthetic-checkpoint generator beside it.

These are the ground the golden-output tests stand on: if the generator drifted from the
official layout, or the golden file lost an array, those tests would fail for reasons that
have nothing to do with the code they check. That the generator reproduces the exact
weights the golden outputs were computed with is proven end to end by
test_model_export.py (the synthetic checkpoint run through the network gives
``net_output``).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

# Upstream architecture facts (depth_anything_v2/dpt.py and DINOv2): embedding width and
# number of transformer blocks of each encoder.
VIT = {"vits": (384, 12), "vitb": (768, 12), "vitl": (1024, 24)}


def _official(reference: Path, encoder: str) -> list[tuple[str, tuple[int, ...]]]:
    table = json.loads((reference / "official_keys.json").read_text())
    return [(name, tuple(shape)) for name, shape in table[encoder]]


def test_keys_file_describes_the_three_official_checkpoints(shared_reference):
    table = json.loads((shared_reference / "official_keys.json").read_text())
    assert sorted(table) == ["vitb", "vitl", "vits"]
    for encoder, (width, depth) in VIT.items():
        names = [name for name, _ in table[encoder]]
        assert len(names) == len(set(names)), encoder
        shapes = dict(_official(shared_reference, encoder))
        assert shapes["pretrained.cls_token"] == (1, 1, width)
        assert shapes["pretrained.patch_embed.proj.weight"] == (width, 3, 14, 14)
        blocks = {name.split(".")[2] for name in names if name.startswith("pretrained.blocks.")}
        assert blocks == {str(i) for i in range(depth)}, encoder
        assert names[-1] == "depth_head.scratch.output_conv2.2.bias"


def test_vits_state_dict_has_exactly_the_official_keys_shapes_and_order(
        shared_reference, synthetic_generator):
    state = synthetic_generator.synthetic_state_dict("vits", 0,
                                                     shared_reference / "official_keys.json")
    assert [(name, tuple(t.shape)) for name, t in state.items()] == \
        _official(shared_reference, "vits")
    assert all(t.dtype == torch.float32 for t in state.values())
    assert all(bool(torch.isfinite(t).all()) for t in state.values())
    # The scaling rules that keep activations realistic took effect.
    assert abs(float(state["depth_head.scratch.output_conv2.2.bias"]) - 1.0) < 0.1
    assert abs(float(state["pretrained.blocks.0.ls1.gamma"].mean()) - 0.1) < 0.01


def test_vitb_tensors_follow_the_official_layout(shared_reference, synthetic_generator):
    """Streamed one tensor at a time (about 1 s, never the whole 390 MB in memory)."""
    keys = shared_reference / "official_keys.json"
    produced = [(name, tuple(t.shape), t.dtype)
                for name, t in synthetic_generator.iter_synthetic_tensors("vitb", 0, keys)]
    assert produced == [(name, shape, torch.float32)
                        for name, shape in _official(shared_reference, "vitb")]


def test_vitl_tensors_follow_the_official_layout(shared_reference, synthetic_generator):
    """The vitl checkpoint (1.3 GB, several seconds to draw) is checked through its layout.

    The layout is all that decides names and shapes; the first tensors actually drawn are
    checked too.
    """
    keys = shared_reference / "official_keys.json"
    official = _official(shared_reference, "vitl")
    assert synthetic_generator.official_layout("vitl", keys) == official
    first = itertools.islice(synthetic_generator.iter_synthetic_tensors("vitl", 0, keys), 12)
    assert [(name, tuple(t.shape), t.dtype) for name, t in first] == \
        [(name, shape, torch.float32) for name, shape in official[:12]]


def test_unknown_encoder_is_refused(shared_reference, synthetic_generator):
    with pytest.raises(KeyError, match="vitg"):
        synthetic_generator.synthetic_state_dict("vitg", 0,
                                                 shared_reference / "official_keys.json")


def test_generator_is_deterministic_per_seed(shared_reference, synthetic_generator):
    keys = shared_reference / "official_keys.json"
    first = synthetic_generator.synthetic_state_dict("vits", 0, keys)
    again = synthetic_generator.synthetic_state_dict("vits", 0, keys)
    other = synthetic_generator.synthetic_state_dict("vits", 1, keys)
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert not any(torch.equal(first[name], other[name]) for name in first)


def test_default_keys_file_sits_next_to_the_generator(synthetic_generator):
    """The CLI and the benchmarks use the default: it must be the shipped file."""
    assert synthetic_generator.KEYS_FILE.parent == Path(synthetic_generator.__file__).parent
    assert synthetic_generator.KEYS_FILE.is_file()


def test_golden_file_holds_the_upstream_arrays(golden):
    expected = {"input_bgr": ((480, 640, 3), np.uint8),
                "net_input": ((1, 3, 518, 686), np.float32),
                "net_output": ((1, 518, 686), np.float32),
                "depth": ((480, 640), np.float32)}
    assert {name: (a.shape, a.dtype) for name, a in golden.items()} == \
        {name: (shape, np.dtype(dtype)) for name, (shape, dtype) in expected.items()}
    for name in ("net_input", "net_output", "depth"):
        assert np.isfinite(golden[name]).all(), name
    # Relative models end in a ReLU, and the synthetic output bias keeps it active.
    assert golden["net_output"].min() >= 0 and golden["net_output"].mean() > 0
    assert golden["input_bgr"].std() > 0  # a scene, not a blank frame
