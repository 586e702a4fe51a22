#!/usr/bin/env python3
"""Soak test: a 30 Hz camera against the installed node for a long time (not run in CI).

    . install/setup.bash
    python scripts/soak.py --model /path/to/model.xml --duration-min 30 --json soak.json

Starts ``depth_anything_node`` as its own process (reliable input, so every frame is
accounted for), publishes VGA bgr8 images with their CameraInfo at the camera rate with
every output subscribed, and samples the node's resident memory (/proc, Linux) and the
end-to-end latency of each depth image (arrival minus camera stamp, one clock). At the
end it compares the first and the last window (5 minutes by default) and fits a line
through all samples after the warm-up, then checks from the node's /diagnostics that it
lost nothing: every frame it received was published or dropped because a newer one
superseded it, none failed or was rejected. Beside that it reports what DDS delivered:
frames sent that never reached the node, and published outputs that never reached this
client. Both happen when the CPU is saturated: Fast DDS recycles shared-memory buffers a
starved reader has not taken yet, and a reliable writer can resend a message only while
it is still in its history (depth 1 for the node's outputs). Prints a table and writes
the figures as JSON; exits 1 when the node's books do not balance or it did not stop
cleanly. Ctrl-C ends the run early and still reports.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
import json
import os
from pathlib import Path
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Optional

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

NAMESPACE = "/soak"
STATUS_NAME = "soak/depth_anything: depth estimation"
OUTPUTS = (("depth/image", Image), ("depth/camera_info", CameraInfo),
           ("depth/colorized", Image), ("depth/points", PointCloud2))
# Diagnostics keys (depth_anything_ros.ros.diagnostics), repeated so the script runs without
# the package on the path.
KEYS = {"received": "frames received", "published": "frames published",
        "dropped": "frames dropped", "skipped": "frames skipped (no subscribers)",
        "failed": "frames failed", "rejected": "messages rejected",
        "inference_ms": "inference latency mean (ms)"}


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for pid {pid}")


def node_command(args: argparse.Namespace, cache_dir: str) -> tuple[list[str], dict[str, str]]:
    """Return the node's command line and environment."""
    env = dict(os.environ, ROS_DOMAIN_ID=str(args.domain_id))
    executable = args.executable or shutil.which("depth_anything_node")
    if executable is None:  # the source tree, without an install
        repo = Path(__file__).resolve().parents[1]
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo), env.get("PYTHONPATH")]))
        executable_args = [sys.executable, "-c",
                           "import sys; from depth_anything_ros.ros.node import main; "
                           "sys.exit(main())"]
    else:
        executable_args = [executable]
    return [*executable_args, "--ros-args", "-r", f"__ns:={NAMESPACE}",
            "-p", f"model_path:={args.model}", "-p", "input_qos:=reliable",
            "-p", f"cache_dir:={cache_dir}", "-p", "diagnostics_period:=1.0",
            *(arg for param in args.param for arg in ("-p", param))], env


class Camera(threading.Thread):
    """Publishes a moving VGA scene and its CameraInfo on a fixed schedule."""

    def __init__(self, node, width: int, height: int, rate_hz: float) -> None:
        super().__init__(name="camera", daemon=True)
        # A second of history: a reliable writer can resend a frame the node's reader has
        # not acknowledged yet only while the frame is still in that history.
        qos = QoSProfile(depth=int(rate_hz) + 1, reliability=ReliabilityPolicy.RELIABLE)
        self.node = node
        self.image_pub = node.create_publisher(Image, f"{NAMESPACE}/image", qos)
        self.info_pub = node.create_publisher(CameraInfo, f"{NAMESPACE}/camera_info", qos)
        self.period_s = 1.0 / rate_hz
        rng = np.random.default_rng(0)
        self.texture = rng.integers(0, 256, (height, width * 2, 3), dtype=np.uint8)
        self.texture[..., 1] = np.linspace(0, 255, width * 2, dtype=np.uint8)[None, :]
        focal = 525.0 * width / 640
        self.info = CameraInfo(width=width, height=height, distortion_model="plumb_bob",
                               d=[0.0] * 5,
                               k=[focal, 0.0, (width - 1) / 2, 0.0, focal, (height - 1) / 2,
                                  0.0, 0.0, 1.0])
        self.sent = 0
        self.late = 0          # frames published more than one period behind schedule
        self.stop_event = threading.Event()

    def run(self) -> None:
        height, width = self.texture.shape[0], self.texture.shape[1] // 2
        start = time.monotonic()
        while not self.stop_event.is_set():
            due = start + self.sent * self.period_s
            delay = due - time.monotonic()
            if delay > 0:
                self.stop_event.wait(delay)
            elif delay < -self.period_s:
                self.late += 1
            shift = (self.sent * 4) % width  # the scene pans: every frame differs
            pixels = np.ascontiguousarray(self.texture[:, shift:shift + width])
            stamp = self.node.get_clock().now().to_msg()
            self.info.header.stamp = stamp
            self.info.header.frame_id = "soak_optical_frame"
            image = Image(height=height, width=width, encoding="bgr8", step=width * 3,
                          data=pixels.tobytes())
            image.header.stamp, image.header.frame_id = stamp, "soak_optical_frame"
            self.info_pub.publish(self.info)
            self.image_pub.publish(image)
            self.sent += 1


@dataclass
class Window:
    rss_mib_median: float
    latency_ms_median: float
    latency_ms_p95: float
    inference_ms_median: float


@dataclass
class Report:
    duration_s: float
    camera_hz: float
    image_size: str
    window_s: float
    warmup_s: float
    frames_sent: int
    frames_sent_late: int
    node_params: list
    node_received: int
    node_published: int
    node_dropped: int
    node_skipped: int
    node_failed: int
    node_rejected: int
    depth_images_received: int
    outputs_received: dict
    outputs_delivered_fraction: float   # received by this client / published, all outputs
    input_delivered_fraction: float     # received by the node / sent
    nothing_lost: bool                  # by the node's books: received = published + dropped
    first: Window
    last: Window
    rss_drift_mib: float
    rss_slope_mib_per_h: float
    latency_drift_ms: float
    latency_slope_ms_per_h: float
    rss_max_mib: float
    shutdown_s: float
    shutdown_rc: Optional[int]


def slope_per_hour(samples: list[tuple[float, float]]) -> float:
    if len(samples) < 2:
        return float("nan")
    t, v = np.array(samples).T
    return float(np.polyfit(t, v, 1)[0] * 3600.0)


def in_window(samples: list[tuple[float, float]], low: float, high: float) -> list[float]:
    return [v for t, v in samples if low <= t < high]


def window(rss, latency, inference, low: float, high: float) -> Window:
    lat = in_window(latency, low, high)
    return Window(statistics.median(in_window(rss, low, high)), statistics.median(lat),
                  float(np.percentile(lat, 95)),
                  statistics.median(in_window(inference, low, high)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="OpenVINO IR (.xml) for the node")
    parser.add_argument("--duration-min", type=float, default=30.0)
    parser.add_argument("--window-min", type=float, default=5.0,
                        help="first/last window compared (shrunk to a third of short runs)")
    parser.add_argument("--warmup-s", type=float, default=30.0,
                        help="left out of the slopes: compile, allocator and cache warm-up")
    parser.add_argument("--rate-hz", type=float, default=30.0)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--sample-s", type=float, default=2.0, help="RSS sampling period")
    parser.add_argument("--param", action="append", default=[], metavar="NAME:=VALUE",
                        help="extra node parameter, e.g. num_threads:=3 (repeatable)")
    parser.add_argument("--executable", help="node executable (default: on PATH, else the "
                                             "source tree)")
    parser.add_argument("--domain-id", type=int, default=1 + os.getpid() % 100)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    duration_s = args.duration_min * 60.0
    stop_early = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop_early.set())
    with tempfile.TemporaryDirectory(prefix="soak_") as tmp:
        logs = open(Path(tmp) / "node.log", "wb")
        command, env = node_command(args, str(Path(tmp) / "ov_cache"))
        proc = subprocess.Popen(command, env=env, stdout=logs, stderr=subprocess.STDOUT)
        context = Context()
        rclpy.init(context=context, domain_id=args.domain_id,
                   signal_handler_options=SignalHandlerOptions.NO)
        node = rclpy.create_node("soak_client", context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        latency: list[tuple[float, float]] = []
        counts = {topic: 0 for topic, _ in OUTPUTS}
        status: dict[str, str] = {}
        inference: list[tuple[float, float]] = []
        rss: list[tuple[float, float]] = []
        t0 = time.monotonic()

        def got(topic: str, msg) -> None:
            counts[topic] += 1
            if topic == "depth/image":
                age_ns = node.get_clock().now().nanoseconds - (
                    msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec)
                latency.append((time.monotonic() - t0, age_ns * 1e-6))

        def got_diagnostics(array: DiagnosticArray) -> None:
            for s in array.status:
                if s.name == STATUS_NAME:
                    status.clear()
                    status.update({kv.key: kv.value for kv in s.values})
                    ms = float(status[KEYS["inference_ms"]])
                    if ms > 0:
                        inference.append((time.monotonic() - t0, ms))

        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        for topic, msg_type in OUTPUTS:
            node.create_subscription(msg_type, f"{NAMESPACE}/{topic}",
                                     lambda m, topic=topic: got(topic, m), reliable)
        node.create_subscription(DiagnosticArray, "/diagnostics", got_diagnostics, 10)
        camera = Camera(node, args.width, args.height, args.rate_hz)
        try:
            deadline = time.monotonic() + 120.0
            while camera.image_pub.get_subscription_count() == 0 or not all(
                    node.count_publishers(f"{NAMESPACE}/{t}") for t, _ in OUTPUTS):
                if proc.poll() is not None or time.monotonic() > deadline:
                    logs.flush()
                    print((Path(tmp) / "node.log").read_text(), file=sys.stderr)
                    return 1
                executor.spin_once(timeout_sec=0.1)
            executor.spin_once(timeout_sec=1.0)  # let the output subscriptions match
            t0 = time.monotonic()
            camera.start()
            next_sample = 0.0
            last_print = 0.0
            while (elapsed := time.monotonic() - t0) < duration_s and not stop_early.is_set():
                executor.spin_once(timeout_sec=0.05)
                if elapsed >= next_sample:
                    rss.append((elapsed, rss_mib(proc.pid)))
                    next_sample += args.sample_s
                if elapsed - last_print >= 60.0:
                    last_print = elapsed
                    recent = [v for t, v in latency if t >= elapsed - 60.0]
                    print(f"{elapsed / 60:5.1f} min  rss {rss[-1][1]:7.1f} MiB  latency "
                          f"{statistics.median(recent) if recent else float('nan'):7.1f} ms  "
                          f"sent {camera.sent}  depth {counts['depth/image']}  load "
                          f"{os.getloadavg()[0]:.2f}", flush=True)
                if proc.poll() is not None:
                    raise RuntimeError(f"the node exited with {proc.returncode}")
            duration_s = elapsed
            camera.stop_event.set()
            camera.join()
            # Drain: the last frame is answered and a diagnostics report covers it.
            drain_until = time.monotonic() + 15.0
            while time.monotonic() < drain_until and int(status.get(KEYS["received"], -1)) != \
                    camera.sent:
                executor.spin_once(timeout_sec=0.1)
            settle = time.monotonic() + 2.5
            while time.monotonic() < settle:
                executor.spin_once(timeout_sec=0.1)
            stop_sent = time.monotonic()
            proc.send_signal(signal.SIGINT)
            try:
                rc: Optional[int] = proc.wait(10.0)
            except subprocess.TimeoutExpired:
                rc = None
            shutdown_s = time.monotonic() - stop_sent
        finally:
            camera.stop_event.set()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            executor.shutdown()
            node.destroy_node()
            rclpy.try_shutdown(context=context)
            logs.close()

    node_counts = {name: int(status[key]) for name, key in KEYS.items() if name != "inference_ms"}
    nothing_lost = (node_counts["received"] == node_counts["published"] + node_counts["dropped"]
                    and node_counts["rejected"] == node_counts["failed"] == 0)
    delivered = sum(counts.values()) / max(1, len(counts) * node_counts["published"])
    window_s = min(args.window_min * 60.0, (duration_s - args.warmup_s) / 3)
    after_warmup = [(t, v) for t, v in rss if t >= args.warmup_s]
    latency_after = [(t, v) for t, v in latency if t >= args.warmup_s]
    first = window(rss, latency, inference, args.warmup_s, args.warmup_s + window_s)
    last = window(rss, latency, inference, duration_s - window_s, duration_s + 1.0)
    report = Report(
        duration_s=duration_s, camera_hz=args.rate_hz, image_size=f"{args.width}x{args.height}",
        window_s=window_s, warmup_s=args.warmup_s, frames_sent=camera.sent,
        frames_sent_late=camera.late, node_params=args.param,
        input_delivered_fraction=node_counts["received"] / max(1, camera.sent),
        node_received=node_counts["received"],
        node_published=node_counts["published"], node_dropped=node_counts["dropped"],
        node_skipped=node_counts["skipped"], node_failed=node_counts["failed"],
        node_rejected=node_counts["rejected"], depth_images_received=counts["depth/image"],
        outputs_received=dict(counts), outputs_delivered_fraction=delivered,
        nothing_lost=nothing_lost, first=first, last=last,
        rss_drift_mib=last.rss_mib_median - first.rss_mib_median,
        rss_slope_mib_per_h=slope_per_hour(after_warmup),
        latency_drift_ms=last.latency_ms_median - first.latency_ms_median,
        latency_slope_ms_per_h=slope_per_hour(latency_after),
        rss_max_mib=max(v for _, v in rss), shutdown_s=shutdown_s, shutdown_rc=rc)
    print_table(report)
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=2) + "\n")
    return 0 if nothing_lost and rc == 0 else 1


def print_table(r: Report) -> None:
    w = r.window_s / 60.0
    rows = [
        ("duration", f"{r.duration_s / 60:.1f} min at {r.camera_hz:g} Hz, {r.image_size} bgr8 + "
                     "CameraInfo, all outputs subscribed"
                     + (f"; node {' '.join(r.node_params)}" if r.node_params else "")),
        ("frames", f"sent {r.frames_sent} ({r.frames_sent_late} late), node received "
                   f"{r.node_received}, published {r.node_published}, dropped as superseded "
                   f"{r.node_dropped}, failed {r.node_failed}, rejected {r.node_rejected}"),
        ("nothing lost by the node", "yes" if r.nothing_lost else "NO"),
        ("frames delivered to the node", f"{100 * r.input_delivered_fraction:.2f}% of those "
                                         "sent"),
        ("outputs received here", ", ".join(f"{t} {n}" for t, n in r.outputs_received.items())
         + f" ({100 * r.outputs_delivered_fraction:.2f}% of those published)"),
        (f"RSS median, first / last {w:.1f} min",
         f"{r.first.rss_mib_median:.1f} / {r.last.rss_mib_median:.1f} MiB "
         f"(drift {r.rss_drift_mib:+.1f} MiB, slope {r.rss_slope_mib_per_h:+.1f} MiB/h, "
         f"max {r.rss_max_mib:.1f})"),
        (f"end-to-end latency median, first / last {w:.1f} min",
         f"{r.first.latency_ms_median:.1f} / {r.last.latency_ms_median:.1f} ms "
         f"(drift {r.latency_drift_ms:+.1f} ms, slope {r.latency_slope_ms_per_h:+.1f} ms/h)"),
        ("end-to-end latency p95, first / last",
         f"{r.first.latency_ms_p95:.1f} / {r.last.latency_ms_p95:.1f} ms"),
        ("inference mean (node), first / last",
         f"{r.first.inference_ms_median:.1f} / {r.last.inference_ms_median:.1f} ms"),
        ("shutdown (SIGINT)", f"{r.shutdown_s:.2f} s, exit code {r.shutdown_rc}"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    sys.exit(main())
