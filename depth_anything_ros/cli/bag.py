"""``depth_anything_bag``: a rosbag2 recording in, the node's outputs for every frame out.

For data recorded on a robot: every camera of the bag goes through the same per-camera
pipeline as ``depth_anything_node`` with the node's own parameters (same names, same
params file, same checks), and every frame comes out, in order, with the input frame's
header and bag timestamp, as the node would have published it had it kept up. No ROS
installation is needed: the bag is read and written with rosbags.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import shutil
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any, Callable, Optional, Sequence

from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.rosbag2 import ReaderError, StoragePlugin, Writer, WriterError
from tqdm import tqdm

from depth_anything_ros.cli.bag_mcap import BagWriter
from depth_anything_ros.cli.bag_messages import MessageWriter, output_qos, output_typestore
from depth_anything_ros.cli.bag_runner import (BagCamera, BagReporter, BagSink,
                                               read_recording)
from depth_anything_ros.cli.bag_topics import CameraTopics, find_cameras, MSGTYPES
from depth_anything_ros.cli.errors import run_reporting_errors
from depth_anything_ros.inference.engine import DepthEngine, EngineConfig
from depth_anything_ros.pipeline.camera import CameraPipeline
from depth_anything_ros.pipeline.camera_state import CameraState
from depth_anything_ros.pipeline.outputs import OUTPUT_KEYS, OUTPUTS
from depth_anything_ros.pipeline.parameters import INFERENCE_PRECISIONS, NodeParams
from depth_anything_ros.pipeline.params_file import ParamsSource
from depth_anything_ros.pipeline.runner import FrameRunner, Policy
from depth_anything_ros.pipeline.stats import ProcessingStats

PROG = "depth_anything_bag"
STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
# What the engine is built from: one engine serves every camera, so these must agree.
ENGINE_PARAMS = ("device", "inference_precision", "cache_dir", "num_streams", "num_threads",
                 "allow_cpu_fallback", "inference_workers")
EXIT_SIGNALLED = 128   # + the signal number: 130 for SIGINT, 143 for SIGTERM


def _outputs(text: str) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [name for name in chosen if name not in OUTPUT_KEYS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"outputs are {','.join(OUTPUT_KEYS)}; got {text!r}")
    return chosen


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__.split("\n")[0].split(": ", 1)[1],
        epilog="Exit codes: 0 done, 1 bad input or model, 130/143 stopped by SIGINT/SIGTERM "
               "(the output bag is closed and holds every frame finished until then).")
    parser.add_argument("input", type=Path, metavar="INPUT",
                        help="rosbag2 recording: its folder (metadata.yaml), or one .mcap/.db3")
    parser.add_argument("output", type=Path, metavar="OUTPUT",
                        help="rosbag2 folder to create")
    parser.add_argument("--model", required=True, metavar="M.xml",
                        help="IR made by depth_anything_export, or a folder holding one model")
    parser.add_argument("--image-topic", action="append", default=[], metavar="TOPIC",
                        help="sensor_msgs/Image or CompressedImage topic to process "
                             "(repeatable); default: every image topic of the bag, each "
                             "paired with the camera_info beside it")
    parser.add_argument("--outputs", type=_outputs, metavar="LIST",
                        help=f"comma-separated subset of {','.join(OUTPUT_KEYS)} (default: "
                             "every output the model gives, as the node publishes them)")
    parser.add_argument("--params-file", type=Path, metavar="YAML",
                        help="the node's ROS 2 params file, e.g. config/depth.yaml; sections "
                             "match <image namespace>/depth_anything as for the node")
    parser.add_argument("-p", dest="overrides", action="append", default=[],
                        metavar="NAME:=VALUE", help="a node parameter, over the params file "
                        "(repeatable). The engine runs with performance_hint THROUGHPUT "
                        "unless -p performance_hint:=LATENCY is given")
    parser.add_argument("--storage", choices=tuple(STORAGES), default="mcap",
                        help="storage of the output bag (default mcap)")
    parser.add_argument("--copy-input", action="store_true",
                        help="also copy every input message, so one bag holds both")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace OUTPUT if it is a rosbag2 folder")
    parser.add_argument("--inference-precision", choices=[p for p in INFERENCE_PRECISIONS if p],
                        help="override the inference_precision parameter (f32: exact results)")
    return parser


class _Signals:
    """SIGINT/SIGTERM ask for a stop instead of raising in whatever code runs."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.received: Optional[int] = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: Optional[FrameType]) -> None:
        self.received = self.received or signum
        self.stop.set()

    def __enter__(self) -> "_Signals":
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *_exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def main(argv: Optional[list[str]] = None) -> int:
    return run_reporting_errors(PROG, run, build_parser().parse_args(argv))


def _open_reader(path: Path) -> AnyReader:
    if not path.exists():
        raise ValueError(f"input bag {path} does not exist")
    try:
        reader = AnyReader([path], default_typestore=output_typestore())
        reader.open()
    except Exception as exc:  # whatever a damaged bag makes rosbags raise: the user's to fix
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ValueError(f"cannot read input bag {path}: {reason}") from None
    if not reader.is2:
        reader.close()
        raise ValueError(f"{path} is a ROS 1 bag; convert it to rosbag2 first "
                         "(rosbags-convert --src IN.bag --dst OUT)")
    return reader


def _check_output(output: Path, input_path: Path, overwrite: bool) -> None:
    """Refuse an existing OUTPUT unless --overwrite, and then only a rosbag2 folder."""
    if not output.exists():
        return
    if output.resolve() == input_path.resolve():
        raise ValueError(f"OUTPUT {output} is the input bag")
    if not overwrite:
        raise ValueError(f"{output} exists; pass --overwrite to replace it")
    if not (output.is_dir() and (output / "metadata.yaml").is_file()):
        raise ValueError(f"{output} exists and is not a rosbag2 folder (no metadata.yaml); "
                         "not removing it")


def _camera_params(source: ParamsSource, cameras: Sequence[CameraTopics]) -> list[NodeParams]:
    """Return each camera's parameters: those of the node in its namespace."""
    loaded = [source.for_node(camera.node_name) for camera in cameras]
    unknown = sorted({name for params in loaded for name in params.unknown})
    if unknown:
        _warn(f"ignoring unknown parameter(s) {', '.join(unknown)}: the node has no such "
              "parameter (see config/depth.yaml for the names)")
    if source.path is not None:
        for camera, params in zip(cameras, loaded):
            if not params.sections:
                _warn(f"no section of {source.path} applies to {camera.node_name} (the node "
                      f"for {camera.image}); it runs with the defaults and -p values")
    first = loaded[0].params
    for camera, params in zip(cameras[1:], loaded[1:]):
        for name in ENGINE_PARAMS:
            if getattr(params.params, name) != getattr(first, name):
                raise ValueError(
                    f"parameter '{name}' is {getattr(params.params, name)!r} for "
                    f"{camera.node_name} but {getattr(first, name)!r} for "
                    f"{cameras[0].node_name}; one engine serves every camera")
    return [params.params for params in loaded]


def _engine(model: str, params: NodeParams, source: ParamsSource,
            precision: Optional[str]) -> DepthEngine:
    """Return the engine every camera shares: THROUGHPUT unless -p asks for LATENCY.

    A params file's performance_hint is the live node's choice (config/depth.yaml says
    LATENCY); a batch over recorded frames wants throughput unless told otherwise here.
    """
    hint = params.performance_hint if "performance_hint" in source.overridden else "THROUGHPUT"
    return DepthEngine(EngineConfig(
        model_path=model, device=params.device, performance_hint=hint,
        inference_precision=precision or params.inference_precision,
        cache_dir=params.cache_dir, num_streams=params.num_streams,
        num_threads=params.num_threads, allow_cpu_fallback=params.allow_cpu_fallback))


def _outputs_of(pipeline: CameraPipeline, params: NodeParams, camera: CameraTopics,
                requested: Optional[tuple[str, ...]]) -> list[str]:
    """Return the outputs to write for a camera, as the node decides which exist.

    An output asked for by name that the camera cannot have is an error; by default the
    ones it cannot have are left out, as the node leaves them unpublished.
    """
    missing = pipeline.absent_outputs()
    if not pipeline.has_metres(params):
        missing["depth"] = missing["points"] = (
            "a relative model without relative_scale (or scale_source) gives no metres")
    for key in requested or ():
        if key in missing:
            raise ValueError(f"--outputs {key}: {camera.image} cannot have it: {missing[key]}")
    return [key for key in requested or OUTPUT_KEYS if key not in missing]


def run(args: argparse.Namespace,
        on_frames: Optional[Callable[[int], None]] = None) -> int:
    """Process the bag; ``on_frames(n)`` is told of each frame done (for benchmarks)."""
    started = time.perf_counter()
    with _Signals() as signals:
        source = ParamsSource(args.params_file, args.overrides)
        reader = _open_reader(args.input)
        try:
            return _run(args, reader, source, signals, started, on_frames)
        except (AnyReaderError, ReaderError) as exc:
            raise ValueError(f"cannot read input bag {args.input}: {exc}") from None
        finally:
            reader.close()


def _run(args: argparse.Namespace, reader: AnyReader, source: ParamsSource,
         signals: _Signals, started: float,
         on_frames: Optional[Callable[[int], None]]) -> int:
    found, notes = find_cameras({name: info.msgtype for name, info in reader.topics.items()},
                                args.image_topic)
    for note in notes:
        _warn(note)
    params = _camera_params(source, found)
    _check_output(args.output, args.input, args.overwrite)
    engine = _engine(args.model, params[0], source, args.inference_precision)
    pipelines = [CameraPipeline(engine) for _ in found]
    chosen = [_outputs_of(pipeline, p, topics, args.outputs)
              for pipeline, p, topics in zip(pipelines, params, found)]
    written = {topics.output(key) for topics, keys in zip(found, chosen) for key in keys}
    if args.copy_input:
        clash = sorted(written & {connection.topic for connection in reader.connections})
        if clash:
            raise ValueError(f"--copy-input: the input bag already has {', '.join(clash)}, "
                             "which this run writes")
    if signals.received is not None:    # while the model loaded: leave OUTPUT as it was
        print(f"{PROG}: interrupted before the first frame; {args.output} not written",
              file=sys.stderr)
        return EXIT_SIGNALLED + signals.received
    if args.output.exists():
        shutil.rmtree(args.output)
    writer = BagWriter(args.output, version=Writer.VERSION_LATEST,
                       storage_plugin=STORAGES[args.storage])
    try:
        writer.open()
    except (WriterError, OSError) as exc:
        raise ValueError(f"cannot create {args.output}: {exc}") from None
    store = output_typestore()
    try:
        cameras = []
        for topics, pipeline, p, keys in zip(found, pipelines, params, chosen):
            qos = [output_qos(p.output_qos)]
            outputs = {output.key: writer.add_connection(topics.output(output.key),
                                                         MSGTYPES[output.kind], typestore=store,
                                                         offered_qos_profiles=qos)
                       for output in OUTPUTS if output.key in keys}
            state = CameraState(topics.image, pipeline, ProcessingStats(), lambda p=p: p,
                                expects_camera_info="camera_info" in topics.inputs)
            cameras.append(BagCamera(topics, state, outputs))
        routes, copies = _routes(reader, writer, cameras, args.copy_input)
        sink = BagSink(writer, MessageWriter(store), cameras)
        _process(cameras, sink, reader, routes, copies, params[0].inference_workers,
                 signals.stop, on_frames)
    finally:
        writer.close()
    _summary(args, cameras, sink, time.perf_counter() - started, signals.received)
    return 0 if signals.received is None else EXIT_SIGNALLED + signals.received


def _routes(reader: AnyReader, writer: Writer, cameras: list[BagCamera], copy_input: bool
            ) -> tuple[dict[int, tuple[str, Optional[BagCamera]]], dict[int, Any]]:
    """Return what each input connection is for, and its output copy with --copy-input."""
    images = {camera.topics.image: camera for camera in cameras}
    inputs = {topic: (key, camera) for camera in cameras
              for key, topic in camera.topics.inputs.items()}
    routes: dict[int, tuple[str, Optional[BagCamera]]] = {}
    copies: dict[int, Any] = {}
    for connection in reader.connections:
        if connection.topic in images:
            routes[connection.id] = ("image", images[connection.topic])
        elif connection.topic in inputs:
            routes[connection.id] = inputs[connection.topic]
        if copy_input:
            routes.setdefault(connection.id, ("copy", None))
            copies[connection.id] = _copy_connection(writer, connection, reader)
    return routes, copies


def _copy_connection(writer: Writer, connection: Any, reader: AnyReader) -> Any:
    """Add an output connection for an input one: its definition, hash and QoS kept."""
    ext = connection.ext
    if connection.msgdef.data and connection.digest:
        definition = {"msgdef": connection.msgdef.data, "rihs01": connection.digest}
    else:   # an older bag without definitions: those of the store it was read with
        definition = {"typestore": reader.typestore}
    return writer.add_connection(connection.topic, connection.msgtype,
                                 serialization_format=ext.serialization_format,
                                 offered_qos_profiles=ext.offered_qos_profiles, **definition)


def _process(cameras: list[BagCamera], sink: BagSink, reader: AnyReader,
             routes: dict[int, tuple[str, Optional[BagCamera]]], copies: dict[int, Any],
             workers: int, stop: threading.Event,
             on_frames: Optional[Callable[[int], None]]) -> None:
    """Run with a progress bar on stderr (a terminal's only) and warnings above it."""
    images = {camera.topics.image for camera in cameras}
    total = sum(info.msgcount for name, info in reader.topics.items() if name in images)
    with tqdm(total=total, unit="frame", file=sys.stderr, dynamic_ncols=True,
              disable=None) as bar:
        lock = threading.Lock()

        def progress(count: int) -> None:
            with lock:
                bar.update(count)
                if on_frames is not None:
                    on_frames(count)

        reporter = BagReporter(cameras, lambda text: bar.write(f"{PROG}: {text}",
                                                               file=sys.stderr))
        runner = FrameRunner([camera.state for camera in cameras], sink, reporter,
                             Policy.RECORDED, workers=workers, stop=stop)
        runner.progress = progress
        runner.run(lambda: read_recording(reader, routes, copies, runner, reporter))


def _summary(args: argparse.Namespace, cameras: list[BagCamera], sink: BagSink,
             seconds: float, signum: Optional[int]) -> None:
    counts = {camera.topics.image: camera.state.stats.snapshot() for camera in cameras}
    frames = sum(snap.published_total for snap in counts.values())
    rate = frames / seconds if seconds > 0 else 0.0
    print(f"{args.output} ({args.storage}): {frames} complete frames in {seconds:.1f} s "
          f"({rate:.2f} frames/s)")
    for camera in cameras:
        snap = counts[camera.topics.image]
        outputs = ",".join(o.name.removeprefix("depth/") for o in OUTPUTS
                           if o.key in camera.outputs)
        print(f"  {camera.topics.image}: {snap.published_total} of {snap.received_total} "
              f"frames -> {camera.topics.namespace}/depth/{{{outputs}}}")
        rejected = {kind: count for kind, count in sorted(snap.rejected_by_kind.items())
                    if count}
        problems = []
        if rejected:
            problems.append("rejected: " + ", ".join(
                f"{kind} {count}" for kind, count in rejected.items()))
        problems += [f"{what}: {count}" for what, count in (
            ("skipped as unreadable", camera.unreadable), ("failed", snap.failed_total),
            ("stamp restarts", snap.stamp_restarts)) if count]
        if problems:
            print(f"    {'; '.join(problems)}")
    if sink.copied:
        print(f"  copied {sink.copied} input messages")
    if signum is not None:
        print(f"interrupted by {signal.Signals(signum).name}: the bag holds the {frames} "
              "complete frames written before it")


def _warn(text: str) -> None:
    print(f"{PROG}: warning: {text}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
