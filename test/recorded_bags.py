"""rosbag2 recordings of synthetic cameras, written with rosbags, for the bag tool's tests.

The benchmarks load this file by path (as they load scenes.py) to make their input bag.
Messages are built field by field, so a test can record what a camera driver would and
also what a broken one would (a wrong data length, a corrupt JPEG, an uncalibrated K).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import get_typestore, Stores

STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
STORE = get_typestore(Stores.ROS2_KILTED)
TYPES = STORE.types


def header(stamp_ns: int, frame_id: str) -> Any:
    return TYPES["std_msgs/msg/Header"](
        stamp=TYPES["builtin_interfaces/msg/Time"](sec=stamp_ns // 1_000_000_000,
                                                   nanosec=stamp_ns % 1_000_000_000),
        frame_id=frame_id)


def pinhole_k(width: int, height: int, hfov_deg: float = 70.0) -> tuple[float, ...]:
    fx = width / 2 / np.tan(np.radians(hfov_deg) / 2)
    return (fx, 0.0, (width - 1) / 2, 0.0, fx, (height - 1) / 2, 0.0, 0.0, 1.0)


class BagBuilder:
    """A rosbag2 being recorded; ``with BagBuilder(path) as bag: bag.image(...)``."""

    def __init__(self, path: Path, storage: str = "mcap") -> None:
        self.writer = Writer(path, version=Writer.VERSION_LATEST,
                             storage_plugin=STORAGES[storage])
        self._connections: dict[str, Any] = {}

    def __enter__(self) -> "BagBuilder":
        self.writer.open()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.writer.close()

    def write(self, topic: str, msg: Any, timestamp: int) -> None:
        msgtype = msg.__msgtype__
        if topic not in self._connections:
            self._connections[topic] = self.writer.add_connection(topic, msgtype, typestore=STORE)
        self.writer.write(self._connections[topic], timestamp,
                          STORE.serialize_cdr(msg, msgtype))

    def write_raw(self, topic: str, msgtype: str, data: bytes, timestamp: int) -> None:
        """Record bytes that need not be a valid message of ``msgtype``."""
        if topic not in self._connections:
            self._connections[topic] = self.writer.add_connection(topic, msgtype, typestore=STORE)
        self.writer.write(self._connections[topic], timestamp, data)

    def image(self, topic: str, timestamp: int, pixels: np.ndarray, stamp_ns: int,
              frame_id: str = "camera_optical", encoding: str = "bgr8",
              data: Optional[np.ndarray] = None) -> None:
        height, width = pixels.shape[:2]
        step = width * (pixels.shape[2] if pixels.ndim == 3 else 1) * pixels.itemsize
        payload = np.ascontiguousarray(pixels).reshape(-1).view(np.uint8) if data is None \
            else data
        self.write(topic, TYPES["sensor_msgs/msg/Image"](
            header=header(stamp_ns, frame_id), height=height, width=width, encoding=encoding,
            is_bigendian=False, step=step, data=payload), timestamp)

    def compressed(self, topic: str, timestamp: int, pixels: Optional[np.ndarray],
                   stamp_ns: int, frame_id: str = "camera_optical", fmt: str = "jpeg",
                   data: Optional[bytes] = None) -> None:
        if data is None:
            ok, encoded = cv2.imencode(".jpg" if fmt == "jpeg" else ".png", pixels)
            assert ok
            data = encoded.tobytes()
        self.write(topic, TYPES["sensor_msgs/msg/CompressedImage"](
            header=header(stamp_ns, frame_id), format=fmt,
            data=np.frombuffer(data, np.uint8)), timestamp)

    def camera_info(self, topic: str, timestamp: int, stamp_ns: int, width: int, height: int,
                    k: tuple[float, ...], frame_id: str = "camera_optical",
                    d: tuple[float, ...] = (0.0,) * 5) -> None:
        p = (k[0], 0.0, k[2], 0.0, 0.0, k[4], k[5], 0.0, 0.0, 0.0, 1.0, 0.0)
        roi = TYPES["sensor_msgs/msg/RegionOfInterest"](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
        self.write(topic, TYPES["sensor_msgs/msg/CameraInfo"](
            header=header(stamp_ns, frame_id), height=height, width=width,
            distortion_model="plumb_bob", d=np.array(d, np.float64), k=np.array(k, np.float64),
            r=np.eye(3).reshape(-1), p=np.array(p, np.float64), binning_x=0, binning_y=0,
            roi=roi), timestamp)
