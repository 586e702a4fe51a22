"""A test camera on the ROS graph, and waiting for the node's answers to its frames.

Every ROS test publishes its frames through ``Camera``: an image (raw bgr8, or PNG on
``image/compressed``) and its CameraInfo, stamped alike, and the stamps it sent. The node
copies the image's header to every output, so a stamp says which frame an output answers.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import cv2
import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from ros_harness import Client, stamp_key
from scenes import noise_scene

HEIGHT, WIDTH = 60, 80
SCENE = noise_scene(7, HEIGHT, WIDTH)
# Off-centre principal point and unequal focal lengths, so swapped axes would show.
CAMERA_K = (70.0, 0.0, 41.0, 0.0, 66.0, 28.5, 0.0, 0.0, 1.0)
FRAME_ID = "test_camera_optical_frame"
IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
# Upper bound for any awaited output, including process start, model read and first
# compile on a loaded 2-core machine (any test may be the first to use a node process).
TIMEOUT_S = 60.0


def pinhole_info(height: int, width: int, k: Sequence[float], **fields: Any) -> CameraInfo:
    """Return a calibrated CameraInfo without distortion (plumb_bob, D = 0, R = I).

    ``fields`` replace any of its fields (``d``, ``p``...).
    """
    values = {"height": height, "width": width, "k": list(k), "distortion_model": "plumb_bob",
              "d": [0.0] * 5, "r": list(IDENTITY)}
    values.update(fields)
    return CameraInfo(**values)


class Camera:
    """Publishes ``pixels`` and their CameraInfo into ``namespace``, recording the stamps sent.

    ``info`` is the CameraInfo sent with each frame (by default ``pinhole_info`` with
    ``k``); ``camera_info=False`` sends none. ``history`` is the publishers' queue: a
    reliable writer keeps that many samples until every reader has them.
    """

    def __init__(self, client: Client, namespace: str, pixels: np.ndarray = SCENE,
                 k: Sequence[float] = CAMERA_K, *, info: Optional[CameraInfo] = None,
                 frame_id: str = FRAME_ID, reliable: bool = True, compressed: bool = False,
                 camera_info: bool = True, history: int = 5) -> None:
        self.client = client
        self.pixels = pixels
        self.frame_id = frame_id
        self.compressed = compressed
        self.info = info if info is not None else pinhole_info(*pixels.shape[:2], k)
        image_topic = f"{namespace}/image" + ("/compressed" if compressed else "")
        self.image_pub = client.publisher(CompressedImage if compressed else Image,
                                          image_topic, reliable, history)
        self.info_pub = (client.publisher(CameraInfo, f"{namespace}/camera_info", reliable,
                                          history) if camera_info else None)
        self.sent: list[tuple[int, int]] = []

    def image_message(self) -> Image | CompressedImage:
        """Return ``pixels`` as the message this camera sends (unstamped)."""
        if self.compressed:
            ok, png = cv2.imencode(".png", self.pixels)
            assert ok
            return CompressedImage(format="png", data=png.tobytes())
        height, width = self.pixels.shape[:2]
        return Image(height=height, width=width, encoding="bgr8", step=width * 3,
                     data=self.pixels.tobytes())

    def publish(self, image: Image | CompressedImage | None = None,
                info: CameraInfo | None = None, stamp: Any = None) -> tuple[int, int]:
        """Send a frame: the CameraInfo first, as drivers do, then the image.

        ``image`` and ``info`` replace this camera's own; ``stamp`` (a builtin Time) the
        current time. Returns the frame's stamp key.
        """
        stamp = stamp if stamp is not None else self.client.now()
        if self.info_pub is not None:
            self.send_info(info if info is not None else self.info, stamp)
        return self.send_image(image if image is not None else self.image_message(), stamp)

    def send_info(self, info: CameraInfo, stamp: Any) -> None:
        info.header.stamp, info.header.frame_id = stamp, self.frame_id
        self.info_pub.publish(info)

    def send_image(self, image: Image | CompressedImage, stamp: Any) -> tuple[int, int]:
        image.header.stamp, image.header.frame_id = stamp, self.frame_id
        self.image_pub.publish(image)
        self.sent.append(stamp_key(image.header))
        return self.sent[-1]

    def connected(self) -> bool:
        """Whether the node subscribes to this camera's image (and CameraInfo, if sent)."""
        return self.image_pub.get_subscription_count() > 0 and (
            self.info_pub is None or self.info_pub.get_subscription_count() > 0)

    def close(self) -> None:
        self.client.node.destroy_publisher(self.image_pub)
        if self.info_pub is not None:
            self.client.node.destroy_publisher(self.info_pub)


def complete_stamp(client: Client, topics: list[str],
                   sent: list[tuple[int, int]]) -> Optional[tuple[int, int]]:
    """Return the newest stamp in ``sent`` that has arrived on every topic, else None."""
    for key in reversed(sent):
        if all(key in client.received.get(t, {}) for t in topics):
            return key
    return None


def wait_for_outputs(client: Client, camera: Camera, topics: list[str],
                     timeout_s: float = TIMEOUT_S, after: int = 0,
                     period_s: float = 0.05) -> tuple[int, int]:
    """Publish frames every ``period_s`` until one sent after the first ``after`` is answered.

    Answered: come back on all ``topics`` (which the client records). Returns its stamp.
    """
    def done() -> bool:
        return complete_stamp(client, topics, camera.sent[after:]) is not None

    assert client.spin_until(done, timeout_s, tick=camera.publish, period_s=period_s), (
        f"no frame came back on all of {topics} within {timeout_s} s; "
        f"got {[(t, len(client.received.get(t, {}))) for t in topics]}")
    return complete_stamp(client, topics, camera.sent[after:])
