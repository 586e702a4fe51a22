"""The benchmark's side of the ROS graph.

A camera that publishes frames and a consumer that records when each output arrives, in this
process, in its own Context.

Latency is arrival minus the camera stamp, both from the system clock (the ROS clock is
the system clock without sim time), so it spans the node process and both DDS hops. The
arrival time is taken when the rclpy callback runs, i.e. after deserialization, as any
Python consumer would see it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from depth_anything_ros.ros.codec import fill_data
from depth_anything_ros.ros.diagnostics import KEY_INFERENCE_MEAN, KEY_PUBLISHED, KEY_RECEIVED
from depth_anything_ros.ros.node import NODE_NAME

OUTPUTS = {"depth": ("depth/image", Image), "colorized": ("depth/colorized", Image),
           "points": ("depth/points", PointCloud2)}
# A fixed calibration at the image size: 525 px focal length is a typical 640x480 RGB-D.
FOCAL_AT_640 = 525.0


def camera_image(pixels: np.ndarray, header: Header) -> Image:
    """Return a bgr8 sensor_msgs/Image as a camera driver would publish it."""
    height, width = pixels.shape[:2]
    msg = Image(header=header, height=height, width=width, encoding="bgr8",
                is_bigendian=False, step=width * 3)
    fill_data(msg, pixels)
    return msg


def _stamp_ns(header: Header) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


@dataclass
class Arrivals:
    """topic key -> {stamp ns: arrival ns}, written by the executor thread."""

    by_output: dict[str, dict[int, int]] = field(
        default_factory=lambda: {key: {} for key in OUTPUTS})
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, key: str, stamp: int) -> None:
        now = time.time_ns()
        with self.lock:
            self.by_output[key][stamp] = now

    def complete(self, stamp: int) -> bool:
        with self.lock:
            return all(stamp in table for table in self.by_output.values())

    def snapshot(self) -> dict[str, dict[int, int]]:
        with self.lock:
            return {key: dict(table) for key, table in self.by_output.items()}

    def first_arrival(self, key: str) -> int | None:
        with self.lock:
            table = self.by_output[key]
            return min(table.values()) if table else None

    def clear(self) -> None:
        with self.lock:
            for table in self.by_output.values():
                table.clear()


class CameraClient:
    """Publishes bgr8 frames + CameraInfo reliably (as most camera drivers do).

    A best-effort subscriber still gets them best-effort. It subscribes to all three outputs
    reliably (as rviz2 and depth_image_proc do) and keeps the node's frame counter from
    /diagnostics.
    """

    def __init__(self, domain_id: int, namespace: str, pixels: np.ndarray) -> None:
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("bench_camera", namespace=namespace,
                                      context=self.context)
        camera_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                                reliability=ReliabilityPolicy.RELIABLE)
        self._image_pub = self.node.create_publisher(Image, "image", camera_qos)
        self._info_pub = self.node.create_publisher(CameraInfo, "camera_info", camera_qos)
        self.arrivals = Arrivals()
        self.frames_received_by_node: int | None = None
        self.frames_published_by_node: int | None = None
        # The node's own per-second mean of its engine.infer time, while reporting.
        self.node_inference_ms: list[float] = []
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._diagnostics, 10)
        out_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                             reliability=ReliabilityPolicy.RELIABLE)
        for key, (topic, msg_type) in OUTPUTS.items():
            self.node.create_subscription(
                msg_type, topic,
                lambda msg, key=key: self.arrivals.record(key, _stamp_ns(msg.header)), out_qos)
        self.pixels = pixels
        height, width = pixels.shape[:2]
        focal = FOCAL_AT_640 * width / 640.0
        self._info = CameraInfo(height=height, width=width, distortion_model="plumb_bob",
                                d=[0.0] * 5,
                                k=[focal, 0.0, (width - 1) / 2, 0.0, focal, (height - 1) / 2,
                                   0.0, 0.0, 1.0],
                                r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                                p=[focal, 0.0, (width - 1) / 2, 0.0, 0.0, focal,
                                   (height - 1) / 2, 0.0, 0.0, 0.0, 1.0, 0.0])
        self.published: list[int] = []
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self.node)
        self._spinner = threading.Thread(target=self._spin, name="bench_spin", daemon=True)
        self._spinner.start()
        self._camera: threading.Thread | None = None
        self._camera_stop = threading.Event()

    def _diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            # "<name or namespace/name>: <task>", as diagnostic_updater names statuses
            if status.name.split(":")[0].endswith(NODE_NAME):
                values = {kv.key: kv.value for kv in status.values}
                if KEY_RECEIVED in values:
                    self.frames_received_by_node = int(values[KEY_RECEIVED])
                if KEY_PUBLISHED in values:
                    self.frames_published_by_node = int(values[KEY_PUBLISHED])
                mean = float(values.get(KEY_INFERENCE_MEAN, "0"))
                if mean > 0:
                    self.node_inference_ms.append(mean)

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except Exception:  # shutdown while spinning
            pass

    def publish(self) -> int:
        """One frame stamped now; returns the stamp in ns."""
        now = time.time_ns()
        header = Header(frame_id="camera_optical_frame")
        header.stamp.sec, header.stamp.nanosec = divmod(now, 1_000_000_000)
        self._info.header = header
        self._info_pub.publish(self._info)
        self._image_pub.publish(camera_image(self.pixels, header))
        self.published.append(now)
        return now

    def connected(self) -> bool:
        """Our image publisher has matched the node and the node's outputs exist.

        The node's side of the match may still be pending: see ``ros_e2e.first_output``.
        """
        return (self._image_pub.get_subscription_count() > 0
                and all(self.node.count_publishers(self.node.resolve_topic_name(topic)) > 0
                        for topic, _ in OUTPUTS.values()))

    def start_camera(self, rate_hz: float) -> None:
        """Publish at ``rate_hz`` from a thread, on an absolute schedule (no drift)."""
        self._camera_stop.clear()

        def loop() -> None:
            period = 1.0 / rate_hz
            next_at = time.monotonic()
            while not self._camera_stop.is_set():
                self.publish()
                next_at += period
                delay = next_at - time.monotonic()
                if delay > 0:
                    self._camera_stop.wait(delay)
                else:
                    next_at = time.monotonic()  # fell behind: do not burst to catch up

        self._camera = threading.Thread(target=loop, name="bench_camera", daemon=True)
        self._camera.start()

    def stop_camera(self) -> None:
        self._camera_stop.set()
        if self._camera is not None:
            self._camera.join()
            self._camera = None

    def close(self) -> None:
        self.stop_camera()
        self._executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._spinner.join(5.0)
