#!/usr/bin/env python3
"""Synthetic Depth Anything V2 weights for tests and benchmarks: never a model.

The real checkpoints cannot be fetched where this project is built and tested, yet the
loader, the exporter and the inference engine must be checked against the real
architecture. This module fills every tensor of an official checkpoint (names, shapes
and order from ``official_keys.json``) with seeded random values. The values mean
nothing; they are only scaled so that activations stay in a realistic range through the
whole network, which makes numerical comparisons (PyTorch vs. ONNX vs. OpenVINO, FP32 vs.
FP16/INT8) meaningful. Depth maps computed with these weights are noise.

The tensors are bit-identical to those the golden outputs in this folder were computed
with (seed 0, ``vits``), so changing the draw order, the seeding or any scaling rule
below breaks the golden-output tests: treat the algorithm as frozen.

    python test/reference/synthetic_checkpoint.py --encoder vits --seed 0 --out ck.pth
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
import json
import math
from pathlib import Path

import torch

KEYS_FILE = Path(__file__).resolve().parent / "official_keys.json"
ENCODERS = ("vits", "vitb", "vitl")
# The last conv of the depth head: its bias sits near 1 so that the output ReLU
# (relative models) or sigmoid (metric models) works on mostly positive inputs
# instead of clipping half of the map to zero.
OUTPUT_BIAS = "depth_head.scratch.output_conv2.2.bias"
TOKENS = ("cls_token", "pos_embed", "mask_token")


def official_layout(encoder: str, keys_file: Path = KEYS_FILE) -> list[tuple[str, tuple[int, ...]]]:
    """``(name, shape)`` of every tensor of the official ``encoder`` checkpoint, in file order.

    The order matters because every tensor consumes the shared generator in turn.
    """
    table = json.loads(Path(keys_file).read_text())
    if encoder not in table:
        raise KeyError(f"{keys_file} has no encoder {encoder!r} (it has {sorted(table)})")
    return [(name, tuple(shape)) for name, shape in table[encoder]]


def _scaled(name: str, shape: tuple[int, ...], noise: torch.Tensor) -> torch.Tensor:
    """Turn unit Gaussian ``noise`` into a plausible value for the parameter ``name``.

    The rules are tested in this order, first match wins, and each one's arithmetic is
    part of the frozen algorithm (``noise / s`` and ``noise * (1 / s)`` round differently).
    """
    if name == OUTPUT_BIAS:
        return 1.0 + 0.02 * noise
    if name.endswith(".gamma"):
        # DINOv2 LayerScale: small, positive, as in a trained ViT.
        return 0.1 + 0.01 * noise
    if name.endswith("bias"):
        return 0.02 * noise
    if len(shape) == 1:
        # What is left of the vectors are norm weights: scale around one.
        return 1.0 + 0.05 * noise
    if name.endswith(TOKENS):
        return 0.02 * noise
    # Conv and linear weights: 1/sqrt(fan_in) keeps each layer's output variance close
    # to its input's, so nothing explodes or vanishes through the depth of the ViT.
    return noise / math.sqrt(math.prod(shape[1:]))


def iter_synthetic_tensors(encoder: str, seed: int,
                           keys_file: Path = KEYS_FILE) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield ``(name, float32 tensor)`` in file order, one at a time.

    That way a caller that only inspects them (shapes, dtypes) never holds a whole vitl
    checkpoint.
    """
    generator = torch.Generator().manual_seed(seed)
    for name, shape in official_layout(encoder, keys_file):
        noise = torch.randn(shape, generator=generator)
        yield name, _scaled(name, shape, noise).float()


def synthetic_state_dict(encoder: str, seed: int,
                         keys_file: Path = KEYS_FILE) -> dict[str, torch.Tensor]:
    """Return the state dict of a synthetic ``depth_anything_v2_<encoder>.pth``.

    It holds the official keys in file order, deterministic for a given ``seed``. The metric
    checkpoints share these keys, so the same dict stands in for them too.
    """
    return dict(iter_synthetic_tensors(encoder, seed, keys_file))


def main(argv: list[str] | None = None) -> None:
    """Write a synthetic checkpoint with ``torch.save``, as the official files are."""
    parser = argparse.ArgumentParser(
        description="Write a synthetic Depth Anything V2 checkpoint (random weights, "
                    "for tests and benchmarks only).")
    parser.add_argument("--encoder", choices=ENCODERS, default="vits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keys", type=Path, default=KEYS_FILE,
                        help="official_keys.json to take names and shapes from")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.save(synthetic_state_dict(args.encoder, args.seed, args.keys), args.out)


if __name__ == "__main__":
    main()
