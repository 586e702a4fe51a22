"""Metric references as they arrive, decoded without ROS: depth images and point clouds.

Reads message fields by name, like ``image_input``, so rclpy messages and the ones
``rosbags`` deserializes go through the same code. Depth comes as metres: 32FC1 as it
is, 16UC1 (and mono16, which depth drivers also use for millimetres) divided by 1000;
0 and NaN mean no data and stay invalid (REP 117/118).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from depth_anything_ros.pipeline.notes import REJECT_REFERENCE_CLOUD, REJECT_REFERENCE_ENCODING

DEPTH_ENCODINGS = ("32FC1", "16UC1", "mono16")
POINTFIELD_FLOAT32 = 7


class ReferenceDecodeError(ValueError):
    """A reference message this package cannot read; ``kind`` names the rule it broke."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def reference_depth(msg: Any) -> np.ndarray:
    """Return a depth image message as (H, W) float32 metres, NaN where it has no data."""
    encoding = msg.encoding
    if encoding not in DEPTH_ENCODINGS:
        raise ReferenceDecodeError(
            f"reference depth has encoding {encoding!r}; expected 32FC1 (metres) or 16UC1 "
            "(millimetres)", REJECT_REFERENCE_ENCODING)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    size = 4 if encoding == "32FC1" else 2
    data = np.frombuffer(msg.data, dtype=np.uint8)
    if height == 0 or width == 0 or step < width * size or data.size != height * step:
        raise ReferenceDecodeError(
            f"reference depth {width}x{height} {encoding} with step {step} does not match its "
            f"{data.size} bytes of data", REJECT_REFERENCE_ENCODING)
    order = ">" if msg.is_bigendian else "<"
    dtype = np.dtype(f"{order}f4" if size == 4 else f"{order}u2")
    if step % size == 0:
        values = as_strided(data.view(dtype), shape=(height, width), strides=(step, size),
                            writeable=False)
    else:  # rows padded by a byte count that is not a whole number of values
        rows = data.reshape(height, step)[:, :width * size]
        values = np.ascontiguousarray(rows).view(dtype)
    depth = values.astype(np.float32)
    if size == 2:
        depth *= np.float32(0.001)
    depth[~(depth > 0)] = np.nan   # 0, negative and NaN: no data
    return depth


def cloud_points(msg: Any) -> np.ndarray:
    """Return the x, y, z of a PointCloud2 as (N, 3) float32, in the cloud's own frame.

    Any point layout with float32 x, y and z fields works (LiDAR drivers add intensity,
    ring, time); organized clouds are flattened. Non-finite points are kept here and
    dropped by the projection, which counts a cloud with none as its own rejection.
    """
    fields = {f.name: f for f in msg.fields}
    missing = [name for name in "xyz" if name not in fields
               or int(fields[name].datatype) != POINTFIELD_FLOAT32]
    if missing:
        raise ReferenceDecodeError(
            f"reference cloud has no float32 field {', '.join(missing)} (fields: "
            f"{', '.join(fields) or 'none'}); expected x, y, z as FLOAT32",
            REJECT_REFERENCE_CLOUD)
    height, width = int(msg.height), int(msg.width)
    point_step, row_step = int(msg.point_step), int(msg.row_step)
    data = np.frombuffer(msg.data, dtype=np.uint8)
    offsets = [int(fields[name].offset) for name in "xyz"]
    if (point_step < 4 or max(offsets) + 4 > point_step or row_step < width * point_step
            or data.size < height * row_step):
        raise ReferenceDecodeError(
            f"reference cloud {width}x{height} with point_step {point_step}, row_step "
            f"{row_step} and x/y/z at {offsets} does not fit its {data.size} bytes of data",
            REJECT_REFERENCE_CLOUD)
    dtype = np.dtype(">f4" if msg.is_bigendian else "<f4")
    rows = data[:height * row_step].reshape(height, row_step)[:, :width * point_step]
    points = rows.reshape(height * width, point_step)
    xyz = np.empty((height * width, 3), np.float32)
    for axis, offset in enumerate(offsets):
        xyz[:, axis] = points[:, offset:offset + 4].copy().view(dtype)[:, 0]
    return xyz
