"""``depth_anything_export``: checkpoint -> ONNX -> OpenVINO IR in one offline-safe command."""

from __future__ import annotations

import argparse
from pathlib import Path
import sys
import warnings

from depth_anything_ros.cli.errors import run_reporting_errors
from depth_anything_ros.export.configs import ENCODERS
from depth_anything_ros.export.da3_models import DA3_MODELS
from depth_anything_ros.inference.metadata import METRIC_MAX_DEPTH
from depth_anything_ros.inference.sizing import (check_network_size, DA3_LONG_SIDE,
                                                 da3_network_size, DEFAULT_SIDE, network_size,
                                                 parse_hw)

EXAMPLE = ("examples:\n"
           "  depth_anything_export --encoder vits --metric indoor"
           " --checkpoint depth_anything_v2_metric_hypersim_vits.pth \\\n"
           "      --image-size 480x640 --output models/vits_indoor_480x640.xml --verify\n"
           "  depth_anything_export --model da3metric-large --checkpoint DA3METRIC-LARGE/ \\\n"
           "      --image-size 480x640 --output models/da3metric_480x640.xml\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="depth_anything_export", add_help=False, epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Export Depth Anything V2 or 3 to OpenVINO IR (or ONNX) with its metadata.")
    parser.add_argument("--help", action="help", help="show this help and exit")
    parser.add_argument("--model", choices=sorted(DA3_MODELS),
                        help="a Depth Anything 3 model (Apache-2.0); omit for V2, chosen "
                             "with --encoder and --metric")
    parser.add_argument("--encoder", choices=sorted(ENCODERS), help="V2 encoder (default vits)")
    parser.add_argument("--metric", choices=sorted(METRIC_MAX_DEPTH),
                        help="V2 metric head: indoor (Hypersim, 20 m) or outdoor (VKITTI, 80 m); "
                             "omit for the relative model")
    parser.add_argument("--max-depth", type=float,
                        help="override the V2 metric head's max depth (m)")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--checkpoint", type=Path,
                         help="V2: official .pth state dict; DA3: the Hugging Face folder "
                              "(model.safetensors + config.json) or its .safetensors file")
    weights.add_argument("--hf", metavar="PATH_OR_REPO_ID",
                         help="V2: transformers-format folder (or repo id, downloaded); DA3: "
                              "the Hugging Face folder or repo id (downloaded; by default "
                              "the model's own, e.g. depth-anything/DA3METRIC-LARGE)")
    parser.add_argument("-h", "--height", type=int, help=f"network height, multiple of 14 "
                        f"(default {DEFAULT_SIDE}, DA3 {DA3_LONG_SIDE})")
    parser.add_argument("-w", "--width", type=int, help=f"network width, multiple of 14 "
                        f"(default {DEFAULT_SIDE}, DA3 {DA3_LONG_SIDE})")
    parser.add_argument("--image-size", type=parse_hw, metavar="HxW",
                        help="camera size; picks the network size by the upstream rule "
                             "(V2 480x640 -> 518x686; DA3 long side 504: 480x640 -> 378x504)")
    parser.add_argument("--output", type=Path, required=True,
                        help=".onnx stops after ONNX; .xml writes the OpenVINO IR")
    parser.add_argument("--precision", choices=("fp32", "fp16", "int8"), default="fp16")
    parser.add_argument("--calibration-images", type=Path, action="append", default=[],
                        metavar="DIR", help="images folder or video for int8 (repeatable)")
    parser.add_argument("--calibration-size", type=int, default=32)
    parser.add_argument("--int8-float-head", action="store_true",
                        help="int8: keep the DPT head in float (half the p95 error, about "
                             "8%% slower; benchmarks/README.md, 'INT8 settings')")
    parser.add_argument("--use-dynamo", action="store_true", help="torch.export-based exporter")
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--keep-onnx", action="store_true", help="keep the .onnx beside the IR")
    parser.add_argument("--verify", action="store_true",
                        help="compare PyTorch and the IR; non-zero exit above tolerance")
    return parser


def resolve_size(args: argparse.Namespace) -> tuple[int, int]:
    if args.image_size and (args.height or args.width):
        raise ValueError("give either --image-size or -h/-w, not both")
    if args.image_size:
        return (da3_network_size if args.model else network_size)(*args.image_size)
    side = DA3_LONG_SIDE if args.model else DEFAULT_SIDE
    height, width = args.height or side, args.width or side
    check_network_size(height, width)
    return height, width


def main(argv: list[str] | None = None) -> int:
    return run_reporting_errors("depth_anything_export", run, build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    if args.model and (args.encoder or args.metric or args.max_depth):
        raise ValueError("--encoder, --metric and --max-depth choose a V2 model; with --model "
                         f"{args.model} the model name says it all: leave them out")
    height, width = resolve_size(args)
    if args.precision == "int8" and not args.calibration_images:
        raise ValueError("int8 needs --calibration-images DIR (camera images or a video): "
                         "refusing to calibrate on noise")
    max_depth = args.max_depth or (METRIC_MAX_DEPTH[args.metric] if args.metric else None)
    if args.max_depth and not args.metric:
        raise ValueError("--max-depth applies to metric models; add --metric indoor|outdoor")

    import numpy as np
    import torch

    from depth_anything_ros.export.export import (DPT_HEAD_PATTERN, ExportRequest, Int8Settings,
                                                  export_model, verify_ir)

    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    if args.model:
        from depth_anything_ros.export.da3_models import HEAD_PATTERN

        loaded, head_pattern = load_da3_for(args, height, width), HEAD_PATTERN
        label = args.model
    else:
        loaded, head_pattern = load_v2_for(args, max_depth), DPT_HEAD_PATTERN
        label = f"{args.encoder or 'vits'}, {'metric' if max_depth else 'relative'}"
    int8 = Int8Settings(ignored_patterns=(head_pattern,) if args.int8_float_head else ())
    request = ExportRequest(height, width, args.precision, args.opset, args.use_dynamo,
                            tuple(args.calibration_images), args.calibration_size, int8)
    written = export_model(loaded, request, args.output, keep_onnx=args.keep_onnx)
    print(f"wrote {written} ({label}, {height}x{width}, {args.precision})")
    if args.verify and written.suffix == ".xml":
        sample = np.random.default_rng(0).normal(size=(1, 3, height, width)).astype(np.float32)
        result = verify_ir(loaded, written, sample, args.precision)
        print(f"verify: max error {result.max_error:.2e}, mean {result.mean_error:.2e} of the "
              f"output range (tolerance {result.tolerance:.0e})")
        if not result.ok:
            return 2
    return 0


def load_v2_for(args: argparse.Namespace, max_depth: float | None):
    from depth_anything_ros.export.checkpoint import build_model, download_checkpoint, load_hf

    encoder = args.encoder or "vits"
    if args.hf:
        return load_hf(encoder, args.hf, max_depth)
    checkpoint = args.checkpoint or download_checkpoint(encoder, args.metric)
    return build_model(encoder, checkpoint, max_depth)


def load_da3_for(args: argparse.Namespace, height: int, width: int):
    """``--checkpoint`` or ``--hf`` folder, or file; else ``--hf`` repo (or the model's)."""
    from depth_anything_ros.export.da3_checkpoint import download_da3, load_da3

    local = args.checkpoint or (Path(args.hf) if args.hf and Path(args.hf).is_dir() else None)
    if local:
        return load_da3(args.model, local, height, width)
    folder, name = download_da3(args.model, args.hf)
    return load_da3(args.model, folder, height, width, checkpoint_name=name)


if __name__ == "__main__":
    sys.exit(main())
