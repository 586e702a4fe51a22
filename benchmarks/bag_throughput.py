"""Section 'bag': depth_anything_bag's frames/s against the engine's, on one VGA recording.

The bag tool overlaps reading, decoding, finishing, message building and writing with
inference, so its rate should be the engine's own THROUGHPUT rate. Both are measured
here on the same frames, with the same IR, hint and number of requests in flight:

- model only: that many threads each calling ``DepthEngine.infer`` with its own lane on
  frames decoded beforehand (the host resize is in, as in the tool);
- the tool: ``depth_anything_bag`` run in-process on a recording of those frames (bgr8
  with CameraInfo, MCAP) writing every output (depth, camera_info, colorized, xyzrgb
  points) to a new MCAP bag on the same disk.

Each rate is taken between the completion of frame ``WARM_FRAMES`` and the last one, so
start-up, the first-frame compile and the queues filling up are left out. Model and tool
run in turns, each tool run compared with the mean of the model runs before and after
it, so a drift in the machine's load hits both sides.
"""

from __future__ import annotations

import contextlib
import importlib.util
from pathlib import Path
import shutil
import sys
import threading
import time
from types import ModuleType
from typing import Callable, NamedTuple

import numpy as np

from benchmarks.artifacts import ModelFiles, REPO, scenes
from depth_anything_ros.cli import bag
from depth_anything_ros.inference.engine import DepthEngine, EngineConfig

WARM_FRAMES = 4
DISTINCT_SCENES = 8
CAMERA_HZ = 30.0
TARGET_RATIO = 0.95
ROUNDS = 5


def _recorded_bags() -> ModuleType:
    """Return test/recorded_bags.py, the project's one writer of synthetic recordings."""
    spec = importlib.util.spec_from_file_location("depth_anything_recorded_bags",
                                                  REPO / "test" / "recorded_bags.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def write_input_bag(path: Path, camera_size: tuple[int, int], frames: int) -> None:
    """Record a bgr8 camera with its CameraInfo at 30 Hz, as a driver would."""
    recorded = _recorded_bags()
    height, width = camera_size
    images = scenes(DISTINCT_SCENES, height, width)
    k = recorded.pinhole_k(width, height)
    with recorded.BagBuilder(path, "mcap") as recording:
        for index in range(frames):
            stamp = 1_700_000_000_000_000_000 + int(index * 1e9 / CAMERA_HZ)
            recording.camera_info("/camera/camera_info", stamp, stamp, width, height, k)
            recording.image("/camera/image_raw", stamp + 1000, images[index % len(images)],
                            stamp)


class Steady(NamedTuple):
    """Frames/s, and process CPU seconds per frame, from one run's steady part."""

    fps: float
    cpu_per_frame: float


def steady(finished: list[tuple[float, float]]) -> Steady:
    """Return the rates between the WARM_FRAMES-th completion and the last.

    ``finished`` holds (wall clock, process CPU time) at each completion. CPU time per
    frame is what a competing process on the machine cannot inflate: the two sides'
    ratio of it is what their frames/s ratio would be with the cores to themselves.
    """
    done = sorted(finished)
    frames = len(done) - WARM_FRAMES
    (wall0, cpu0), (wall1, cpu1) = done[WARM_FRAMES - 1], done[-1]
    return Steady(frames / (wall1 - wall0), (cpu1 - cpu0) / frames)


def _now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def model_only(model: Path, images: list[np.ndarray], frames: int, lanes: int) -> Steady:
    """Time the engine with ``lanes`` threads keeping requests in flight."""
    engine = DepthEngine(EngineConfig(str(model), performance_hint="THROUGHPUT"))
    for lane in range(lanes):
        engine.infer(images[0], lane=lane)
    finished: list[tuple[float, float]] = []
    counter = iter(range(frames))
    lock = threading.Lock()

    def work(lane: int) -> None:
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            engine.infer(images[index % len(images)], lane=lane)
            with lock:
                finished.append(_now())

    threads = [threading.Thread(target=work, args=(lane,)) for lane in range(lanes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return steady(finished)


def tool(model: Path, bag_in: Path, bag_out: Path) -> tuple[Steady, float, int]:
    """Time the tool; also return its writer's CPU ms per frame and the frames written.

    The writer thread (the caller's: ``on_frames`` runs in it) finishes, builds and
    writes every frame: the work that has to hide behind inference.
    """
    finished: list[tuple[float, float]] = []
    writer: list[float] = []

    def on_frames(count: int) -> None:
        finished.extend([_now()] * count)
        writer.extend([time.thread_time()] * count)

    args = bag.build_parser().parse_args([str(bag_in), str(bag_out), "--model", str(model)])
    with contextlib.redirect_stdout(sys.stderr):   # its summary is a log line here
        code = bag.run(args, on_frames=on_frames)
    if code != 0:
        raise RuntimeError(f"depth_anything_bag exited with {code}")
    writer_ms = 1e3 * (writer[-1] - writer[WARM_FRAMES - 1]) / (len(writer) - WARM_FRAMES)
    return steady(finished), writer_ms, len(finished)


def run_bag(models: ModelFiles, camera_size: tuple[int, int], frames: int, work: Path,
            log: Callable[[str], None] = print, rounds: int = ROUNDS) -> dict:
    """Time the model alone and the tool in turns, M T M ... T M, ``rounds`` tool runs.

    Each tool run is held against the mean of the model runs around it; the section
    reports every rate and the median ratios. Short runs in many turns: on a shared
    machine the rate drifts by tens of percent within minutes.
    """
    if frames <= 2 * WARM_FRAMES:
        raise ValueError(f"the bag section needs more than {2 * WARM_FRAMES} frames")
    model = models.ours["fp16"]
    folder = work / "bag_section"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    bag_in, bag_out = folder / "input", folder / "output"
    log(f"  recording {frames} frames of {camera_size[1]}x{camera_size[0]} bgr8 + CameraInfo")
    write_input_bag(bag_in, camera_size, frames)
    images = scenes(DISTINCT_SCENES, *camera_size)
    probe = DepthEngine(EngineConfig(str(model), performance_hint="THROUGHPUT"))
    compiled = probe.compiled(*camera_size)
    lanes = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    del probe, compiled
    alone: list[Steady] = []
    tools: list[Steady] = []
    writer_ms: list[float] = []
    try:
        for round_index in range(rounds + 1):
            alone.append(model_only(model, images, frames, lanes))
            log(f"  model only, {lanes} requests: {alone[-1].fps:.2f} frames/s, "
                f"{1e3 * alone[-1].cpu_per_frame:.0f} ms CPU per frame")
            if round_index == rounds:
                break
            shutil.rmtree(bag_out, ignore_errors=True)
            result, writing, written = tool(model, bag_in, bag_out)
            tools.append(result)
            writer_ms.append(writing)
            log(f"  depth_anything_bag: {result.fps:.2f} frames/s, "
                f"{1e3 * result.cpu_per_frame:.0f} ms CPU per frame, writer {writing:.1f} ms "
                f"({written} frames)")
        size_mb = sum(f.stat().st_size for f in bag_out.iterdir()) / 1e6
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    ratios = [t.fps / ((alone[i].fps + alone[i + 1].fps) / 2) for i, t in enumerate(tools)]
    cpu_ratios = [((alone[i].cpu_per_frame + alone[i + 1].cpu_per_frame) / 2)
                  / t.cpu_per_frame for i, t in enumerate(tools)]
    return {"camera_size": list(camera_size), "network_size": list(models.network_size),
            "frames": frames, "requests": lanes, "execution": precision,
            "model_only_fps": [round(m.fps, 3) for m in alone],
            "bag_fps": [round(t.fps, 3) for t in tools],
            "model_only_cpu_ms": [round(1e3 * m.cpu_per_frame, 1) for m in alone],
            "bag_cpu_ms": [round(1e3 * t.cpu_per_frame, 1) for t in tools],
            "writer_cpu_ms": [round(v, 1) for v in writer_ms],
            "ratios": [round(v, 3) for v in ratios],
            "ratio": round(float(np.median(ratios)), 3),
            "cpu_ratios": [round(v, 3) for v in cpu_ratios],
            "cpu_ratio": round(float(np.median(cpu_ratios)), 3),
            "output_mb_per_frame": round(size_mb / frames, 2)}


def bag_table(section: dict) -> str:
    """Return the section as markdown, with the target it is held to."""
    if "error" in section:
        return f"### bag: failed\n\n```\n{section['error']}\n```\n"
    cam, net = section["camera_size"], section["network_size"]

    def values(numbers: list[float], digits: int = 2) -> str:
        return " / ".join(f"{v:.{digits}f}" for v in numbers)

    return "\n".join([
        f"### Recorded data: depth_anything_bag, camera {cam[0]}x{cam[1]} -> network "
        f"{net[0]}x{net[1]}, {section['frames']} frames", "",
        f"Same IR (FP16, computing in {section['execution']}), THROUGHPUT hint, "
        f"{section['requests']} requests in flight; every output written "
        f"({section['output_mb_per_frame']} MB per frame, MCAP). Model and tool timed in "
        "turns; each tool run against the mean of the model runs around it. CPU per frame "
        "is the process's, which other load on the machine does not inflate.", "",
        "| measurement | model only (engine.infer on decoded frames) | depth_anything_bag, "
        "bag to bag |", "|---|---|---|",
        f"| frames/s, in turn | {values(section['model_only_fps'])} | "
        f"{values(section['bag_fps'])} |",
        f"| ms CPU per frame | {values(section['model_only_cpu_ms'], 0)} | "
        f"{values(section['bag_cpu_ms'], 0)} |",
        f"| of which the writer thread (finish, build, write) | | "
        f"{values(section['writer_cpu_ms'], 1)} |", "",
        f"frames/s ratio, each run {values(section['ratios'], 3)}: median "
        f"**{section['ratio']:.3f}** (target >= {TARGET_RATIO}); CPU-per-frame ratio (model / "
        f"tool) {values(section['cpu_ratios'], 3)}: median {section['cpu_ratio']:.3f}.", ""])
