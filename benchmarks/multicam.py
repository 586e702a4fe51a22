"""Section 'multicam': N cameras through one node against N single-camera node processes.

Each synthetic camera publishes VGA bgr8 frames and CameraInfo at ``rate_hz`` and has all
three outputs (depth, colorized depth, xyzrgb cloud) subscribed, as rviz2 or a costmap
would. The one node serves them with ``cameras: [cam0, ...]`` and one inference worker per
camera up to the plugin's stream count, with the THROUGHPUT hint when that is more than
one; the N processes run the node's defaults, one camera each, as every peer package
does. Per run:
- total outputs/s: complete frames (all three outputs) per second over all cameras, of
  the frames sent during the run;
- fairness: the slowest camera's output rate over the fastest's;
- latency p50/p95 per camera, camera stamp to the last of the three outputs;
- CPU the node processes spend outside inference per received frame: their CPU time
  (/proc utime + stime) less the frames they inferred times the CPU one inference takes,
  measured in this process on the same IR with the same hint (an estimate: the real
  split depends on how streams share cores);
- summed peak RSS (VmHWM) of the node processes.
"""

from __future__ import annotations

import os
from pathlib import Path
import time
from typing import Callable, Optional

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np

from benchmarks.artifacts import ModelFiles, scenes
from benchmarks.camera_client import CameraClient, OUTPUTS
from benchmarks.node_process import NodeProcess
from benchmarks.ros_e2e import first_output, NodeFailed, wait_until
from benchmarks.timing import Latency
from depth_anything_ros.inference.engine import DepthEngine, EngineConfig
from depth_anything_ros.ros.diagnostics import KEY_PUBLISHED, KEY_RECEIVED

NAMESPACE = "/multicam_bench"
CONNECT_TIMEOUT_S = 60.0
SETTLE_S = 3.0
CPU_FRAMES = 6          # inferences timed for the CPU-per-inference estimate
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """Return the process's user + system CPU time (all threads) from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class _NodeCounts:
    """Frames received and published per camera, from the nodes' /diagnostics."""

    def __init__(self, client: CameraClient) -> None:
        self.by_status: dict[str, tuple[int, int]] = {}
        client.node.create_subscription(DiagnosticArray, "/diagnostics", self._got, 50)

    def _got(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if KEY_RECEIVED in values and status.name.startswith(NAMESPACE.strip("/")):
                self.by_status[status.name] = (int(values[KEY_RECEIVED]),
                                               int(values[KEY_PUBLISHED]))

    def totals(self) -> tuple[int, int]:
        received = sum(r for r, _ in self.by_status.values())
        return received, sum(p for _, p in self.by_status.values())


def _inference_cpu_s(model: Path, camera_size: tuple[int, int], hint: str) -> float:
    """Return the CPU seconds one inference of the IR takes, as the node would run it."""
    engine = DepthEngine(EngineConfig(str(model), performance_hint=hint, cache_dir="none"))
    pixels = scenes(1, *camera_size)[0]
    engine.infer(pixels)
    started = time.process_time()
    for _ in range(CPU_FRAMES):
        engine.infer(pixels)
    return (time.process_time() - started) / CPU_FRAMES


def _streams(model: Path, camera_size: tuple[int, int]) -> int:
    engine = DepthEngine(EngineConfig(str(model), performance_hint="THROUGHPUT",
                                      cache_dir="none"))
    compiled = engine.compiled(*camera_size)
    return int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))


def _camera_result(client: CameraClient, stamps: list[int], duration_s: float) -> dict:
    """Return a camera's rate as complete frames of those it sent in the run, per second.

    Counted over the same window for every camera, so the fairness ratio compares like
    with like (a rate from the first and last arrival would swing with a single frame).
    """
    arrivals = client.arrivals.snapshot()
    complete = [s for s in stamps if all(s in arrivals[k] for k in OUTPUTS)]
    rate = len(complete) / duration_s
    latency = [(max(arrivals[k][s] for k in OUTPUTS) - s) / 1e9 for s in complete]
    return {"output_hz": rate, "frames": len(complete),
            "latency": Latency.from_seconds(latency).to_json() if latency else None,
            "p95_ms": float(np.percentile(latency, 95) * 1e3) if latency else None}


def _run(mode: str, cameras: int, model: Path, camera_size: tuple[int, int], rate_hz: float,
         duration_s: float, domain_id: int, work_dir: Path, workers: int,
         inference_cpu: dict[str, float]) -> dict:
    pixels = scenes(cameras, *camera_size)
    names = [f"cam{i}" for i in range(cameras)]
    clients = [CameraClient(domain_id, f"{NAMESPACE}/{name}", pixels[i])
               for i, name in enumerate(names)]
    counts = _NodeCounts(clients[0])
    nodes: list[NodeProcess] = []
    try:
        if mode == "one node":
            # One worker gains nothing from streams: LATENCY, as for a single camera.
            lanes = min(workers, cameras)
            hint = "THROUGHPUT" if lanes > 1 else "LATENCY"
            params = {"input_qos": "reliable", "performance_hint": hint,
                      "inference_workers": lanes, "cameras": "[" + ",".join(names) + "]"}
            nodes.append(NodeProcess(model, domain_id, NAMESPACE, work_dir / "ov_cache",
                                     work_dir / f"multicam_one_{cameras}", params))
        else:
            for name in names:
                nodes.append(NodeProcess(model, domain_id, f"{NAMESPACE}/{name}",
                                         work_dir / "ov_cache",
                                         work_dir / f"multicam_proc_{cameras}_{name}",
                                         {"input_qos": "reliable"}))
            hint = "LATENCY"
        for index, client in enumerate(clients):
            node = nodes[0] if mode == "one node" else nodes[index]
            if not wait_until(client.connected, CONNECT_TIMEOUT_S, node, "its topics"):
                raise NodeFailed(f"topics did not appear:\n{node.output_tail()}")
            first_output(client, node)
        time.sleep(SETTLE_S)
        received_before, published_before = counts.totals()
        cpu_before = sum(_cpu_seconds(n.popen.pid) for n in nodes)
        for client in clients:
            client.arrivals.clear()
            client.published.clear()
            client.start_camera(rate_hz)
        time.sleep(duration_s)
        for client in clients:
            client.stop_camera()
        cpu_after = sum(_cpu_seconds(n.popen.pid) for n in nodes)
        time.sleep(SETTLE_S)
        received_after, published_after = counts.totals()
        for node in nodes:
            if not node.alive():
                raise NodeFailed(f"a node exited during the run:\n{node.output_tail()}")
        per_camera = [_camera_result(c, list(c.published), duration_s) for c in clients]
        rss = [n.peak_rss_mb() for n in nodes]
    finally:
        for node in nodes:
            node.stop()
        for client in clients:
            client.close()
    rates = [c["output_hz"] for c in per_camera]
    received = received_after - received_before
    inferred = published_after - published_before
    outside = (cpu_after - cpu_before - inferred * inference_cpu[hint]) / max(1, received)
    return {"mode": mode, "cameras": cameras, "total_output_hz": sum(rates),
            "fairness": min(rates) / max(rates) if max(rates) > 0 else 0.0,
            "per_camera": per_camera, "received": received, "inferred": inferred,
            "cpu_outside_inference_ms_per_frame": 1e3 * outside,
            "rss_mb": sum(r for r in rss if r is not None)}


def run_multicam(models: ModelFiles, camera_size: tuple[int, int], duration_s: float,
                 rate_hz: float, domain_id: int, work_dir: Path,
                 log: Callable[[str], None] = print,
                 counts: tuple[int, ...] = (1, 2, 4)) -> dict:
    model = models.ours["fp16"]
    workers = _streams(model, camera_size)
    inference_cpu = {hint: _inference_cpu_s(model, camera_size, hint)
                     for hint in ("LATENCY", "THROUGHPUT")}
    log(f"  THROUGHPUT gives {workers} stream(s); CPU per inference "
        + ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in inference_cpu.items()))
    runs = []
    for cameras in counts:
        for mode in ("one node", "processes"):
            log(f"  {cameras} camera(s) at {rate_hz:g} Hz, {mode}, {duration_s:g} s")
            result = _run(mode, cameras, model, camera_size, rate_hz, duration_s, domain_id,
                          work_dir, workers, inference_cpu)
            log(f"    {result['total_output_hz']:.2f} outputs/s, fairness "
                f"{result['fairness']:.2f}, RSS {result['rss_mb']:.0f} MB")
            runs.append(result)
    return {"camera_size": list(camera_size), "rate_hz": rate_hz, "duration_s": duration_s,
            "streams": workers, "inference_cpu_ms": {k: v * 1e3 for k, v in
                                                     inference_cpu.items()},
            "runs": runs, "ratios": _ratios(runs)}


def _ratios(runs: list[dict]) -> dict[str, dict[str, Optional[float]]]:
    """Return one node against N processes at each N: outputs/s and RSS ratios."""
    out = {}
    for cameras in sorted({r["cameras"] for r in runs}):
        one = next(r for r in runs if r["cameras"] == cameras and r["mode"] == "one node")
        procs = next(r for r in runs if r["cameras"] == cameras and r["mode"] == "processes")
        out[str(cameras)] = {
            "outputs": (one["total_output_hz"] / procs["total_output_hz"]
                        if procs["total_output_hz"] else None),
            "rss": one["rss_mb"] / procs["rss_mb"] if procs["rss_mb"] else None}
    return out


def _fmt(value: Optional[float], digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def multicam_table(section: dict) -> str:
    """Return the section's Markdown: one row per run, then the targets at N = 2."""
    if "error" in section:
        return f"\n## multicam\n\nfailed: {section['error']}\n"
    height, width = section["camera_size"]
    lines = [
        "", f"## multicam: N cameras at {section['rate_hz']:g} Hz, {width}x{height} bgr8, all "
        f"outputs subscribed ({section['duration_s']:g} s each)", "",
        f"One node: `cameras`, one worker per camera up to the {section['streams']} "
        "THROUGHPUT stream(s) (LATENCY hint for one worker). Processes: one node per camera "
        "with its defaults. CPU outside "
        "inference = node CPU time less inferred frames x CPU per inference measured here "
        f"({', '.join(f'{k} {v:.0f} ms' for k, v in section['inference_cpu_ms'].items())}), "
        "per received frame.", "",
        "| N | mode | outputs/s | min/max camera rate | latency p50 / p95 per camera (ms) | "
        "CPU outside inference (ms/frame) | RSS (MB) |",
        "|---|---|---|---|---|---|---|"]
    for run in section["runs"]:
        latency = ", ".join(
            f"{_fmt(c['latency']['median_ms'], 0)} / {_fmt(c['p95_ms'], 0)}"
            if c["latency"] else "-" for c in run["per_camera"])
        lines.append(f"| {run['cameras']} | {run['mode']} | {run['total_output_hz']:.2f} | "
                     f"{run['fairness']:.2f} | {latency} | "
                     f"{run['cpu_outside_inference_ms_per_frame']:.1f} | "
                     f"{run['rss_mb']:.0f} |")
    lines += ["", "| N | outputs/s, one node / processes | RSS, one node / processes |",
              "|---|---|---|"]
    for cameras, ratio in section["ratios"].items():
        lines.append(f"| {cameras} | {_fmt(ratio['outputs'], 2)} | {_fmt(ratio['rss'], 2)} |")
    return "\n".join(lines) + "\n"
