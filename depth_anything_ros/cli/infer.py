"""``depth_anything_infer``: the engine on one image file, no ROS needed.

For trying a model before wiring a robot, and for scripting: same engine, geometry and
colour code as the node, so what it writes is what the node would publish.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
import sys

import cv2
import numpy as np

from depth_anything_ros.cli.camera_info_yaml import read_camera_info_yaml
from depth_anything_ros.cli.errors import run_reporting_errors
from depth_anything_ros.geometry.calibration import CameraCalibration
from depth_anything_ros.geometry.colorize import COLORMAPS
from depth_anything_ros.inference.engine import DepthEngine, EngineConfig
from depth_anything_ros.pipeline.camera import CameraPipeline, Wanted
from depth_anything_ros.pipeline.messages.image_input import DecodedImage
from depth_anything_ros.pipeline.parameters import NodeParams, OUTPUT_RESOLUTIONS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="depth_anything_infer",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="IR (.xml) made by depth_anything_export")
    parser.add_argument("--image", required=True, type=Path, help="input image (any OpenCV format)")
    parser.add_argument("--output", type=Path, help="colorized depth image (e.g. depth.png)")
    parser.add_argument("--depth-npy", type=Path,
                        help="float32 depth as the node publishes it on depth/image (metres, "
                             "+Inf for sky; flying pixels kept), or the relative output for "
                             "relative models without --reference-depth")
    parser.add_argument("--confidence-npy", type=Path,
                        help="float32 per-pixel confidence at the depth's resolution (models "
                             "with a confidence output: DA3-Small/Base)")
    parser.add_argument("--output-resolution", choices=OUTPUT_RESOLUTIONS, default="camera",
                        help="as the node's output_resolution: the image's size (default) or "
                             "the network's")
    parser.add_argument("--ply", type=Path, help="point cloud (metric models), needs "
                                                 "--fov or --fx/--fy/--cx/--cy")
    parser.add_argument("--fov", type=float, help="horizontal field of view, degrees")
    parser.add_argument("--camera-info", type=Path,
                        help="calibration in the camera_calibration YAML format (ost.yaml); "
                             "a distorted camera is rectified first, as the node does")
    parser.add_argument("--rectify", choices=("auto", "off"), default="auto",
                        help="as the node's rectify parameter (default auto)")
    parser.add_argument("--reference-depth", type=Path,
                        help="metric reference registered to the image, at its aspect ratio: "
                             ".npy float metres or a 16-bit PNG in millimetres (0 = no data); "
                             "the depth is aligned to it as the node's scale_source depth does, "
                             "and the fit is printed")
    parser.add_argument("--keep-flying-pixels", action="store_true",
                        help="keep the points the node's flying-pixel filter removes")
    for name in ("fx", "fy", "cx", "cy"):
        parser.add_argument(f"--{name}", type=float)
    parser.add_argument("--colormap", choices=COLORMAPS, default="turbo")
    parser.add_argument("--range", type=float, nargs=2, metavar=("MIN", "MAX"),
                        help="colour range (default: 2nd-98th percentile of the image)")
    parser.add_argument("--device", default="CPU")
    parser.add_argument("--inference-precision", default="", choices=("", "f32", "bf16", "f16"))
    return parser


def settings_from_args(args: argparse.Namespace, pipeline: CameraPipeline,
                       width: int, height: int) -> NodeParams:
    """Return the node's parameters for this one image, and give its calibration to the pipeline.

    That way the CLI computes what the node would. The cloud keeps every valid point (no
    range limits): a file is for looking at, not a costmap.
    """
    explicit = [getattr(args, n) for n in ("fx", "fy", "cx", "cy")]
    calibration = None
    if args.camera_info is not None:
        calibration = read_camera_info_yaml(args.camera_info)
    elif all(v is not None for v in explicit):
        fx, fy, cx, cy = explicit
        calibration = CameraCalibration(width, height, k=(fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0))
    elif args.ply and args.fov is None:
        raise ValueError("--ply needs --fov DEG, --camera-info FILE or all of --fx --fy --cx --cy")
    if calibration is not None:
        note = pipeline.add_calibration(calibration, 0)
        if note is not None:
            raise ValueError(note.text)
    return NodeParams(colormap=args.colormap, cloud_min_range=0.0, cloud_max_range=1000.0,
                      fallback_hfov_deg=args.fov if args.fov is not None else 60.0,
                      rectify=args.rectify, flying_pixel_filter=not args.keep_flying_pixels,
                      output_resolution=args.output_resolution)


def read_reference_depth(path: Path) -> np.ndarray:
    """Return a reference depth file as float32 metres, NaN where it has no data."""
    if path.suffix.lower() == ".npy":
        depth = np.load(path).astype(np.float32)
    else:
        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if raw is None:
            raise ValueError(f"cannot read reference depth {path}")
        if raw.dtype != np.uint16 or raw.ndim != 2:
            raise ValueError(f"reference depth {path} is {raw.dtype} with shape {raw.shape}; "
                             "expected a single-channel 16-bit PNG in millimetres")
        depth = raw.astype(np.float32) * np.float32(0.001)
    if depth.ndim != 2:
        raise ValueError(f"reference depth {path} has shape {depth.shape}; expected (H, W)")
    depth[~(depth > 0)] = np.nan
    return depth


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
    reference = read_reference_depth(args.reference_depth) if args.reference_depth else None
    engine = DepthEngine(EngineConfig(args.model, device=args.device,
                                      inference_precision=args.inference_precision))
    if args.ply and not engine.metadata.is_metric and reference is None:
        raise ValueError("--ply needs metres: a metric model (export with --metric "
                         "indoor|outdoor) or --reference-depth")
    pipeline = CameraPipeline(engine)
    if args.confidence_npy and "confidence" in pipeline.absent_outputs():
        raise ValueError(f"--confidence-npy: {pipeline.absent_outputs()['confidence']} "
                         "(DA3-Small and Base have one)")
    height, width = bgr.shape[:2]
    p = settings_from_args(args, pipeline, width, height)
    if reference is not None:
        p = dataclasses.replace(p, scale_source="depth")
        pipeline.alignment.add_depth(reference, 0, p)
    image = DecodedImage(bgr, "bgr")
    net = pipeline.infer(image, 0, p)
    for note in net.notes:
        print(f"depth_anything_infer: warning: {note.text}", file=sys.stderr)
    raw = net.raw
    kind = "metres" if engine.metadata.is_metric else engine.metadata.depth_meaning.replace(
        "_", " ")
    # The network's value under the sky means nothing (the output is +Inf there), so the
    # printed range and the colour range leave the sky out.
    sky = net.sky if net.sky is not None and p.sky_mask else np.zeros(raw.shape, bool)
    ground = raw[~sky & np.isfinite(raw)]
    span = f"in [{ground.min():.3f}, {ground.max():.3f}]" if ground.size else "nowhere finite"
    print(f"{args.image.name}: {width}x{height}, {kind} {span}"
          + (f", {sky.mean():.1%} sky" if sky.any() else ""))
    if args.output and (engine.metadata.is_metric or reference is not None):
        # Before the fit only the reference is in metres, so it sets the range then.
        metres = ground if reference is None else reference[np.isfinite(reference)]
        low, high = args.range or np.percentile(metres, [2, 98])
        high = max(float(high), float(low) + 1e-3)
        print(f"colour range [{low:.4f}, {high:.4f}] m" + (
            "" if args.range else " (2nd to 98th percentile; --range MIN MAX fixes it)"))
        p = dataclasses.replace(p, colorize_min_depth=float(low), colorize_max_depth=high)
    out = pipeline.finish(net, 0, p, Wanted(
        depth=reference is not None or bool(args.depth_npy), points=bool(args.ply),
        colorized=bool(args.output), relative=False, camera_info=False,
        confidence=bool(args.confidence_npy)))
    for note in out.notes:
        print(f"depth_anything_infer: warning: {note.text}", file=sys.stderr)
    if reference is not None:
        fit = pipeline.alignment.current
        if fit is None:
            raise ValueError(f"{args.reference_depth} did not align with the prediction (see the "
                             "warning above)")
        relation = ("metric inverse depth = {:.6g} * output + {:.6g}" if fit.inverse
                    else "depth = {:.6g} * output").format(fit.scale, fit.shift)
        print(f"aligned to {args.reference_depth.name}: {relation}; {fit.inliers} inliers, "
              f"median relative residual {fit.residual:.4f}")
    if args.depth_npy:
        np.save(args.depth_npy, raw if out.depth is None else out.depth)
    if args.confidence_npy:
        np.save(args.confidence_npy, out.confidence)
    if args.output:
        cv2.imwrite(str(args.output), out.colorized)
    if args.ply:
        count = write_ply(args.ply, out.points, out.colors)
        print(f"wrote {args.ply} ({count} points)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
