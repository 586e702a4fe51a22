"""Section 'startup': process start to first depth image, without and with the model cache.

A user's "second start" is the one that matters for a robot that restarts nodes: the
compiled model comes from OpenVINO's CACHE_DIR instead of being compiled again. The camera
is already publishing when the node starts, as on a robot, so the time includes Python
imports, DDS discovery, reading the IR, compiling (or loading) it and the first frame.
"Cold" means an empty OpenVINO cache, not a cold OS: the IR and Python modules are in the
page cache from earlier sections, as they are on a robot restarting a node. Peak RSS is
the node process's VmHWM once a few frames have gone through.
"""

from __future__ import annotations

from pathlib import Path
import shutil
import time
from typing import Callable

from benchmarks.artifacts import ModelFiles, scenes
from benchmarks.camera_client import CameraClient
from benchmarks.node_process import NodeProcess
from benchmarks.ros_e2e import FIRST_FRAME_TIMEOUT_S, NAMESPACE, NodeFailed, wait_until
from depth_anything_ros.inference.engine import DepthEngine, EngineConfig

CAMERA_HZ = 30.0
FRAMES_BEFORE_RSS = 5


def _folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def _engine_compile_s(model: Path, cache: Path, camera_size: tuple[int, int]) -> float:
    started = time.perf_counter()
    engine = DepthEngine(EngineConfig(str(model), cache_dir=str(cache)))
    engine.warmup(*camera_size)
    return time.perf_counter() - started


def run_startup(models: ModelFiles, camera_size: tuple[int, int], domain_id: int,
                work_dir: Path, log: Callable[[str], None] = print) -> dict:
    model = models.ours["fp16"]
    cache = work_dir / "startup_ov_cache"
    shutil.rmtree(cache, ignore_errors=True)
    client = CameraClient(domain_id, NAMESPACE, scenes(1, *camera_size)[0])
    starts = []
    try:
        client.start_camera(CAMERA_HZ)
        for label in ("cold (empty cache)", "warm (cache of the previous start)"):
            client.arrivals.clear()
            node = NodeProcess(model, domain_id, NAMESPACE, cache,
                               work_dir / f"node_startup_{len(starts)}")
            try:
                if not wait_until(lambda: client.arrivals.first_arrival("depth") is not None,
                                  FIRST_FRAME_TIMEOUT_S, node, "the first depth image"):
                    raise NodeFailed(f"no depth image within {FIRST_FRAME_TIMEOUT_S:.0f} s:\n"
                                     f"{node.output_tail()}")
                first = client.arrivals.first_arrival("depth") / 1e9 - node.started_at
                wait_until(lambda: len(client.arrivals.snapshot()["depth"]) > FRAMES_BEFORE_RSS,
                           30.0, node, "a few frames")
                rss = node.peak_rss_mb()
            finally:
                node.stop()
            log(f"  {label}: first depth image after {first:.2f} s, peak RSS "
                f"{rss if rss is not None else float('nan'):.0f} MB")
            starts.append({"start": label, "first_depth_s": first, "peak_rss_mb": rss,
                           "cache_mb": _folder_mb(cache)})
    finally:
        client.close()
    engine_cache = work_dir / "startup_engine_cache"
    shutil.rmtree(engine_cache, ignore_errors=True)
    cold = _engine_compile_s(model, engine_cache, camera_size)
    warm = _engine_compile_s(model, engine_cache, camera_size)
    log(f"  in-process DepthEngine + first frame: {cold:.2f} s cold, {warm:.2f} s cached")
    return {"camera_size": list(camera_size), "node": starts,
            "engine_first_frame_s": {"cold": cold, "cached": warm}}
