"""The reference cloud's pose in the camera frame from TF, when tf2_ros is installed.

tf2_ros is not on PyPI, so the node must run without it: then ``tf_poses`` returns None
and the node uses the ``reference_extrinsic`` parameter, a fixed pose that suits a LiDAR
bolted next to the camera. With TF, the pose is looked up at the cloud's own stamp, so
a reference from a moving sensor frame still lands where the camera saw it.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.time import Time

# A transform that is not there yet is not waited for: the reference is skipped and
# the last fit kept, rather than stall the executor that also serves the camera.
LOOKUP_TIMEOUT = Duration(seconds=0.0)


def quaternion_matrix(x: float, y: float, z: float, w: float) -> np.ndarray:
    """Return the rotation matrix of a unit quaternion (Hamilton convention, as in TF)."""
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


class TfPoses:
    """Looks poses up in a TF buffer that a listener on the node fills."""

    def __init__(self, node: Node, tf2_ros: Any) -> None:
        self._tf2_ros = tf2_ros
        self._buffer = tf2_ros.Buffer()
        self._listener = tf2_ros.TransformListener(self._buffer, node)

    def pose(self, source_frame: str, camera_frame: str,
             stamp: Any) -> tuple[np.ndarray, np.ndarray]:
        """Return (rotation, translation) taking ``source_frame`` points into ``camera_frame``.

        Raises LookupError saying which transform is missing.
        """
        if not camera_frame:
            raise LookupError("no camera image yet, so the camera's frame_id is unknown")
        try:
            msg = self._buffer.lookup_transform(camera_frame, source_frame, Time.from_msg(stamp),
                                                LOOKUP_TIMEOUT)
        except self._tf2_ros.TransformException as exc:
            raise LookupError(f"no TF from {source_frame!r} to {camera_frame!r} at the cloud's "
                              f"stamp ({exc})") from None
        t, q = msg.transform.translation, msg.transform.rotation
        norm = math.sqrt(q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w)
        rotation = quaternion_matrix(q.x / norm, q.y / norm, q.z / norm, q.w / norm)
        return rotation, np.array([t.x, t.y, t.z])


def tf_poses(node: Node) -> Optional[TfPoses]:
    """Return a TF lookup for ``node``, or None when tf2_ros cannot be imported."""
    try:
        import tf2_ros
    except ImportError:
        return None
    return TfPoses(node, tf2_ros)
