"""``python -m benchmarks``: choose sections, sizes and effort; write results.{md,json,png}."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import platform
import resource
import shutil
import sys
import tempfile
import time
import traceback

from benchmarks.network_sides import parse_sides, run_sides
from depth_anything_ros.export.da3_models import DA3_MODELS
from depth_anything_ros.inference.sizing import (DA3_LONG_SIDE, da3_network_size, DEFAULT_SIDE,
                                                 network_size, parse_hw)

SECTIONS = ("model", "pipeline", "ros", "startup", "bag", "multicam")
DEFAULT_SIZES = ((480, 640), (518, 518))
QUICK = {"runs": 3, "warmup": 1, "calibration_size": 4, "held_out": 1, "ros_duration": 4.0,
         "bag_frames": 12, "bag_rounds": 1}


def _sizes(text: str) -> list[tuple[int, int]]:
    return [parse_hw(part) for part in text.split(",") if part.strip()]


def _names(allowed: tuple[str, ...], what: str):
    """Return an argparse type for a comma-separated subset of ``allowed``."""
    def parse(text: str) -> list[str]:
        chosen = [part.strip() for part in text.split(",") if part.strip()]
        unknown = [name for name in chosen if name not in allowed]
        if unknown or not chosen:
            raise argparse.ArgumentTypeError(f"{what} are {', '.join(allowed)}; got {text!r}")
        return chosen

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Speed of depth_anything_ros against PyTorch, ONNX Runtime and a default "
                    "OpenVINO conversion, stage by stage, through ROS 2 and at startup.")
    parser.add_argument("--encoder", choices=("vits", "vitb", "vitl"), default="vits")
    parser.add_argument("--image-size", type=_sizes, metavar="HxW[,HxW...]",
                        help="camera sizes; the first is also used for the pipeline, ros and "
                             "startup sections (default 480x640,518x518; --quick: 480x640)")
    parser.add_argument("--side", type=int, default=DEFAULT_SIDE,
                        help="network short side: the camera size maps to the network size by "
                             f"the upstream rule (default {DEFAULT_SIDE}; 480x640 -> 518x686)")
    parser.add_argument("--sides", type=parse_sides, metavar="S[,S...]",
                        help="with the model section: also our FP16 IR at these network short "
                             "sides for the first camera size (e.g. 518,448,392,336,280)")
    parser.add_argument("--da3", type=_names(tuple(DA3_MODELS), "DA3 models"), default=[],
                        metavar="MODEL[,MODEL...]",
                        help="with the model section: also these Depth Anything 3 models for "
                             "the first camera size, network by DA3's rule (480x640 -> "
                             "378x504): our FP32/FP16/INT8 IRs, THROUGHPUT and the per-layer "
                             "split, without the baselines (e.g. da3metric-large)")
    parser.add_argument("--da3-long-side", type=int, default=DA3_LONG_SIDE,
                        help=f"network long side for --da3 (default {DA3_LONG_SIDE})")
    parser.add_argument("--runs", type=int, help="timed runs per measurement (default 20)")
    parser.add_argument("--warmup", type=int, help="untimed runs first (default 3)")
    parser.add_argument("--sections", type=_names(SECTIONS, "sections"), default=list(SECTIONS),
                        help=f"comma-separated subset of {','.join(SECTIONS)} (default all)")
    parser.add_argument("--out", type=Path, default=Path("benchmark_results"),
                        help="folder for results.md, results.json, results.png")
    parser.add_argument("--cache", type=Path, default=None,
                        help="exported models and the synthetic checkpoint "
                             "(default ~/.cache/depth_anything_ros/benchmarks)")
    parser.add_argument("--checkpoint", type=Path,
                        help="an official .pth instead of the synthetic one (same timings; "
                             "accuracy columns become meaningful)")
    parser.add_argument("--calibration-size", type=int,
                        help="synthetic scenes for INT8 calibration (default 32)")
    parser.add_argument("--ros-duration", type=float,
                        help="seconds of the sustained 30 Hz run (default 20)")
    parser.add_argument("--camera-hz", type=float, default=30.0)
    parser.add_argument("--bag-frames", type=int,
                        help="frames in the bag section's recording (default 30)")
    parser.add_argument("--domain-id", type=int, default=1 + (os.getpid() + 50) % 100,
                        help="ROS_DOMAIN_ID for the ros/startup/pipeline sections")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 3 runs, 1 warm-up, 4 calibration scenes, one size")
    return parser


def _versions() -> dict[str, str]:
    import numpy
    import openvino

    versions = {"python": platform.python_version(), "numpy": numpy.__version__,
                "openvino": openvino.__version__.split("-")[0]}
    for name in ("torch", "onnxruntime", "nncf"):
        try:
            versions[name] = __import__(name).__version__.split("+")[0]
        except ImportError:
            versions[name] = "not installed"
    return versions


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quick = args.quick
    runs = args.runs or (QUICK["runs"] if quick else 20)
    warmup = args.warmup if args.warmup is not None else (QUICK["warmup"] if quick else 3)
    calibration_size = args.calibration_size or (QUICK["calibration_size"] if quick else 32)
    ros_duration = args.ros_duration or (QUICK["ros_duration"] if quick else 20.0)
    bag_frames = args.bag_frames or (QUICK["bag_frames"] if quick else 30)
    sizes = args.image_size or (list(DEFAULT_SIZES[:1]) if quick else list(DEFAULT_SIZES))

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    # Imported here so that --help works without the export extras.
    from benchmarks.artifacts import DA3ModelBuilder, DEFAULT_CACHE, ModelBuilder
    from benchmarks.machine import cpu_stall_seconds, describe_machine
    from benchmarks.model_latency import ModelSection, Settings
    from benchmarks.report import write_all

    machine = describe_machine()
    started = time.time()
    results: dict = {"meta": {
        "started": time.strftime("%Y-%m-%d %H:%M:%S"), "argv": sys.argv[1:] if argv is None
        else argv, "encoder": args.encoder, "runs": runs, "warmup": warmup,
        "calibration_size": calibration_size, "machine": machine.to_json(),
        "versions": _versions(), "load_average": {"start": os.getloadavg()[0]}}}
    builder = ModelBuilder(args.cache or DEFAULT_CACHE, args.encoder, args.checkpoint,
                           calibration_size, log)
    camera = sizes[0]
    primary_net = network_size(*camera, side=args.side)
    failed = False
    work = Path(tempfile.mkdtemp(prefix="depth_anything_bench_"))

    def section(name: str, fn) -> dict:
        nonlocal failed
        log(f"[{name}]")
        begun = time.perf_counter()
        stall_before = cpu_stall_seconds()
        try:
            result = fn()
        except Exception as exc:  # one broken section must not lose the others' numbers
            failed = True
            log(traceback.format_exc())
            return {"error": f"{type(exc).__name__}: {exc}"}
        seconds = time.perf_counter() - begun
        result["seconds"] = round(seconds, 1)
        stall_after = cpu_stall_seconds()
        if stall_before is not None and stall_after is not None:
            result["cpu_pressure"] = round((stall_after - stall_before) / seconds, 3)
        return result

    if "model" in args.sections:
        settings = Settings(runs, warmup, QUICK["held_out"] if quick else 4,
                            max(runs, 8 if quick else 40))
        runner = ModelSection(builder, machine, settings, log)
        results["model"] = {}
        for size in sizes:
            net = network_size(*size, side=args.side)
            key = f"{net[0]}x{net[1]}"
            results["model"][key] = section(f"model {key}",
                                            lambda size=size, net=net: runner.run(size, net))
        for model in args.da3:
            net = da3_network_size(*camera, long_side=args.da3_long_side)
            da3_runner = ModelSection(DA3ModelBuilder(args.cache or DEFAULT_CACHE, model, net,
                                                      calibration_size, log),
                                      machine, settings, log)
            key = f"{model} {net[0]}x{net[1]}"
            results["model"][key] = section(f"model {key}",
                                            lambda runner=da3_runner, net=net: runner.run(camera,
                                                                                          net))
        if args.sides:
            results["model_sides"] = section("model sides", lambda: run_sides(
                builder, settings, camera, args.sides, log))

    def node_models():
        """Return the node's default IR (FP16) at the first camera size, exported if needed."""
        return builder.models(primary_net, ("fp16",))

    if "pipeline" in args.sections:
        from benchmarks.pipeline_stages import run_pipeline

        results["pipeline"] = section("pipeline", lambda: run_pipeline(
            node_models(), camera, runs, warmup, args.domain_id, log))
    if "ros" in args.sections:
        from benchmarks.ros_e2e import run_ros

        results["ros"] = section("ros", lambda: run_ros(
            node_models(), camera, runs, warmup, ros_duration, args.camera_hz, args.domain_id,
            work, log))
    if "startup" in args.sections:
        from benchmarks.startup import run_startup

        results["startup"] = section("startup", lambda: run_startup(
            node_models(), camera, args.domain_id, work, log))

    if "bag" in args.sections:
        from benchmarks.bag_throughput import ROUNDS, run_bag

        rounds = QUICK["bag_rounds"] if quick else ROUNDS
        results["bag"] = section("bag", lambda: run_bag(
            node_models(), camera, bag_frames, work, log, rounds))

    if "multicam" in args.sections:
        from benchmarks.multicam import run_multicam

        results["multicam"] = section("multicam", lambda: run_multicam(
            node_models(), camera, ros_duration, args.camera_hz, args.domain_id, work, log))

    results["meta"]["load_average"]["end"] = os.getloadavg()[0]
    results["meta"]["seconds"] = round(time.time() - started, 1)
    results["meta"]["benchmark_peak_rss_mb"] = \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    text = write_all(results, args.out)
    if "bag" in results:
        # report.py renders the sections it knows; the bag section brings its own table.
        from benchmarks.bag_throughput import bag_table

        text += "\n" + bag_table(results["bag"])
    if "multicam" in results:
        from benchmarks.multicam import multicam_table

        text += "\n" + multicam_table(results["multicam"])
    if "bag" in results or "multicam" in results:
        (args.out / "results.md").write_text(text)
    print(text)
    if failed:
        log(f"node logs and caches kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    log(f"wrote {args.out}/results.md, results.json, results.png "
        f"({results['meta']['seconds']:.0f} s)")
    return 1 if failed else 0
