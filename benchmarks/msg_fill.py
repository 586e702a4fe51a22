"""How to put a numpy buffer into ``msg.data`` of an rclpy message, measured.

The generated setter behaves differently with field checks on (ROS_PYTHON_CHECK_FIELDS=1,
or the default on distros before Kilted) and off (Kilted's default): with checks it
accepts an ``array.array('B')`` as is but walks any other sequence element by element;
without, it always builds ``array.array('B', value)``, which copies ``bytes`` with one
memcpy but iterates anything else (a memoryview). Both modes are measured in one process
through the ``check_fields`` constructor argument.
"""

from __future__ import annotations

import array
from typing import Callable

import numpy as np
from sensor_msgs.msg import Image, PointCloud2

from benchmarks.timing import measure
from depth_anything_ros.ros.codec import fill_data

# A path that takes longer than this in total stops after three samples.
SLOW_PATH_BUDGET_S = 2.0


def _tobytes(msg, buffer: np.ndarray) -> None:
    msg.data = buffer.tobytes()


def _array_frombytes(msg, buffer: np.ndarray) -> None:
    packed = array.array("B")
    packed.frombytes(buffer.reshape(-1).view(np.uint8))
    msg.data = packed


def _memoryview(msg, buffer: np.ndarray) -> None:
    msg.data = memoryview(buffer).cast("B")


def _reused_array(size: int) -> Callable[[object, np.ndarray], None]:
    """One array.array allocated up front and overwritten per message.

    No allocation or page faults per frame, but only safe because publish() serializes
    before returning.
    """
    packed = array.array("B", bytes(size))
    view = np.frombuffer(packed, np.uint8)

    def fill(msg, buffer: np.ndarray) -> None:
        view[:] = buffer.reshape(-1).view(np.uint8)
        msg.data = packed

    return fill


def run_msg_fill(runs: int, height: int, width: int) -> list[dict]:
    """Depth image (32FC1) and xyzrgb cloud (32 bytes per point) payloads at camera size."""
    payloads = {
        "Image 32FC1": (Image, np.random.default_rng(0).random((height, width), np.float32)),
        "PointCloud2 xyzrgb": (PointCloud2, np.zeros((height, width, 32), np.uint8)),
    }
    results = []
    for payload, (msg_type, buffer) in payloads.items():
        methods = {
            "msg.data = arr.tobytes()": _tobytes,
            "array.array('B').frombytes(arr)": _array_frombytes,
            "msg.data = memoryview(arr)": _memoryview,
            "reused array.array, numpy copy into it": _reused_array(buffer.nbytes),
            "ros.codec.fill_data (what the node uses)": fill_data,
        }
        for check in (False, True):
            for method, fill in methods.items():
                msg = msg_type(check_fields=check)
                latency = measure(lambda: fill(msg, buffer), runs, 1, SLOW_PATH_BUDGET_S)
                if len(msg.data) != buffer.nbytes:
                    raise AssertionError(f"{method} stored {len(msg.data)} bytes, "
                                         f"expected {buffer.nbytes}")
                results.append({"payload": payload, "bytes": buffer.nbytes,
                                "check_fields": check, "method": method,
                                "latency": latency.to_json()})
    return results
