"""``depth_anything_infer``: the engine on one image file, no ROS needed.

For trying a model before wiring a robot, and for scripting: same engine, geometry and
colour code as the node, so what it writes is what the node would publish.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from .cli_errors import run_reporting_errors
from .colorize import COLORMAPS, Colorizer
from .engine import DepthEngine, EngineConfig
from .geometry import Intrinsics, RayGrid


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="depth_anything_infer", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="IR (.xml) made by depth_anything_export")
    parser.add_argument("--image", required=True, type=Path, help="input image (any OpenCV format)")
    parser.add_argument("--output", type=Path, help="colorized depth image (e.g. depth.png)")
    parser.add_argument("--depth-npy", type=Path,
                        help="float32 depth at the image's resolution (metres, or relative "
                             "inverse depth for relative models)")
    parser.add_argument("--ply", type=Path, help="point cloud (metric models), needs "
                                                 "--fov or --fx/--fy/--cx/--cy")
    parser.add_argument("--fov", type=float, help="horizontal field of view, degrees")
    for name in ("fx", "fy", "cx", "cy"):
        parser.add_argument(f"--{name}", type=float)
    parser.add_argument("--colormap", choices=COLORMAPS, default="turbo")
    parser.add_argument("--range", type=float, nargs=2, metavar=("MIN", "MAX"),
                        help="colour range (default: 2nd-98th percentile of the image)")
    parser.add_argument("--device", default="CPU")
    parser.add_argument("--inference-precision", default="", choices=("", "f32", "bf16", "f16"))
    return parser


def intrinsics_from_args(args: argparse.Namespace, width: int, height: int) -> Intrinsics:
    explicit = [getattr(args, n) for n in ("fx", "fy", "cx", "cy")]
    if all(v is not None for v in explicit):
        return Intrinsics(*explicit, width=width, height=height).validate()
    if args.fov is not None:
        return Intrinsics.from_fov(width, height, args.fov)
    raise ValueError("--ply needs --fov DEG or all of --fx --fy --cx --cy")


def write_ply(path: Path, points: np.ndarray, bgr: np.ndarray) -> int:
    valid = np.isfinite(points[..., 2])
    xyz = points[valid].astype("<f4")
    rgb = bgr[valid][:, ::-1]
    vertex = np.empty(len(xyz), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
                                       ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    for i, axis in enumerate("xyz"):
        vertex[axis] = xyz[:, i]
    for i, channel in enumerate(("red", "green", "blue")):
        vertex[channel] = rgb[:, i]
    header = ("ply\nformat binary_little_endian 1.0\n"
              f"element vertex {len(vertex)}\n"
              "property float x\nproperty float y\nproperty float z\n"
              "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n")
    with open(path, "wb") as handle:
        handle.write(header.encode("ascii"))
        handle.write(vertex.tobytes())
    return len(vertex)


def main(argv: list[str] | None = None) -> int:
    return run_reporting_errors("depth_anything_infer", run, build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    bgr = cv2.imread(str(args.image), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read image {args.image}")
    engine = DepthEngine(EngineConfig(args.model, device=args.device,
                                      inference_precision=args.inference_precision))
    depth = engine.infer(bgr, "bgr")
    height, width = depth.shape
    kind = "metres" if engine.metadata.is_metric else "relative inverse depth"
    print(f"{args.image.name}: {width}x{height}, {kind} in "
          f"[{np.nanmin(depth):.3f}, {np.nanmax(depth):.3f}]")
    if args.depth_npy:
        np.save(args.depth_npy, depth)
    if args.output:
        low, high = args.range or np.percentile(depth, [2, 98])
        if not high > low:
            high = low + 1e-3
        cv2.imwrite(str(args.output), Colorizer(args.colormap, float(low), float(high))(depth))
    if args.ply:
        if not engine.metadata.is_metric:
            raise ValueError("--ply needs a metric model (export with --metric indoor|outdoor)")
        grid = RayGrid(intrinsics_from_args(args, width, height))
        count = write_ply(args.ply, grid.points(depth), bgr)
        print(f"wrote {args.ply} ({count} points)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
