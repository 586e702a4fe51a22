"""``python -m benchmarks.int8_sweep``: which NNCF settings make INT8 worth shipping.

Each variant is quantized from the same ONNX on the same synthetic calibration scenes,
then timed through ``DepthEngine`` (u8 camera image to depth, as the node runs it) in
interleaved rounds with our FP16 IR, and compared with the FP32 IR run in f32 on held-out
scenes. The export defaults (``Int8Settings``) are the winner of this table; rerun it on
the target CPU before trusting them there.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import hashlib
from pathlib import Path
import sys

from benchmarks.artifacts import DEFAULT_CACHE, HELD_OUT_SEED, ModelBuilder, scenes
from benchmarks.model_latency import relative_errors
from benchmarks.timing import measure_interleaved, SPIN_PAUSE_S
from depth_anything_ros.export.export import DPT_HEAD_PATTERN, ExportRequest, Int8Settings
from depth_anything_ros.inference.engine import DepthEngine, EngineConfig
from depth_anything_ros.inference.sizing import DEFAULT_SIDE, network_size, parse_hw

ATTENTION = r".*/attn/MatMul(_1)?$"   # Q.K^T and attention.V inside each block


@dataclass(frozen=True)
class Variant:
    name: str
    settings: Int8Settings
    calibration_size: int = 32


VARIANTS = (
    Variant("NNCF defaults (transformer, mixed, SmoothQuant 0.95)", Int8Settings()),
    Variant("performance preset (symmetric activations)", Int8Settings(preset="performance")),
    Variant("SmoothQuant off", Int8Settings(smooth_quant_alpha=-1)),
    Variant("SmoothQuant alpha 0.5", Int8Settings(smooth_quant_alpha=0.5)),
    Variant("attention matmuls in float", Int8Settings(ignored_patterns=(ATTENTION,))),
    Variant("DPT head in float", Int8Settings(ignored_patterns=(DPT_HEAD_PATTERN,))),
    Variant("NNCF defaults, 8 calibration scenes", Int8Settings(), calibration_size=8),
)


def quantized(builder: ModelBuilder, onnx_path: Path, size: tuple[int, int],
              variant: Variant) -> Path:
    key = repr((variant.settings, variant.calibration_size)).encode()
    xml = builder.root / f"{size[0]}x{size[1]}" / "int8_sweep" / \
        hashlib.sha256(key).hexdigest()[:10] / "model.xml"
    if not xml.is_file():
        print(f"quantizing: {variant.name}", file=sys.stderr, flush=True)
    return builder.convert(xml, onnx_path, ExportRequest(
        *size, precision="int8",
        calibration=(builder.calibration_images(variant.calibration_size),),
        calibration_size=variant.calibration_size, int8=variant.settings))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.int8_sweep", description=__doc__)
    parser.add_argument("--encoder", choices=("vits", "vitb", "vitl"), default="vits")
    parser.add_argument("--image-size", type=parse_hw, default=(480, 640), metavar="HxW")
    parser.add_argument("--side", type=int, default=DEFAULT_SIDE,
                        help="network short side (upstream rule, as python -m benchmarks)")
    parser.add_argument("--checkpoint", type=Path,
                        help="an official .pth instead of the synthetic one")
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--held-out", type=int, default=4)
    parser.add_argument("--only", type=int, nargs="*", help="variant indices (default all)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args(argv)

    camera_size = args.image_size
    size = network_size(*camera_size, side=args.side)
    builder = ModelBuilder(args.cache, args.encoder, args.checkpoint, 32,
                           lambda text: print(text, file=sys.stderr, flush=True))
    models = builder.models(size, ("fp32", "fp16"))
    variants = [VARIANTS[i] for i in args.only] if args.only else list(VARIANTS)
    irs = [quantized(builder, models.onnx, size, v) for v in variants]

    camera = scenes(1, *camera_size)[0]
    held_out = scenes(args.held_out, *camera_size, first_seed=HELD_OUT_SEED)
    reference = DepthEngine(EngineConfig(str(models.ours["fp32"]), cache_dir="none",
                                         inference_precision="f32"))
    references = [reference.infer(image) for image in held_out]
    engines = [DepthEngine(EngineConfig(str(xml), cache_dir="none"))
               for xml in [models.ours["fp16"], *irs]]
    latencies = measure_interleaved([lambda e=e: e.infer(camera) for e in engines],
                                    args.runs, 2, SPIN_PAUSE_S)
    base = latencies[0].median_ms
    print(f"{args.encoder}, camera {camera_size[0]}x{camera_size[1]} -> network "
          f"{size[0]}x{size[1]}, median of {args.runs} interleaved runs, error against the "
          f"FP32 IR in f32 on {args.held_out} held-out scenes\n")
    print("| variant | median ms | x FP16 | median rel. err | p95 rel. err |")
    print("|---|---:|---:|---:|---:|")
    print(f"| our FP16 IR (device default precision) | {base:.1f} | 1.00 | | |")
    for variant, engine, latency in zip(variants, engines[1:], latencies[1:]):
        median, p95 = relative_errors([engine.infer(i) for i in held_out], references)
        print(f"| {variant.name} | {latency.median_ms:.1f} | {base / latency.median_ms:.2f} | "
              f"{100 * median:.2f} % | {100 * p95:.2f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
