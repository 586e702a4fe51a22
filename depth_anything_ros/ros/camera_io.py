"""One camera's share of the node: its topics, its pipeline state, its counters.

The node serves one camera on ``image``/``camera_info``, or several named by the
``cameras`` parameter, each under its own prefix (``front/image`` ... ``front/depth/points``)
relative to the node's namespace, so each can be remapped alone. Everything that belongs
to one camera lives here, so one camera's faults, rates and calibration never show up in
another's diagnostics, and a camera nobody watches costs nothing.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from depth_anything_ros.pipeline.camera import CameraPipeline
from depth_anything_ros.pipeline.stats import ProcessingStats
from depth_anything_ros.ros.cloud_msg import CloudBuilder

# Topic names relative to the camera's prefix; the launch file remaps the inputs.
TOPIC_IMAGE = "image"
TOPIC_COMPRESSED = "image/compressed"
TOPIC_CAMERA_INFO = "camera_info"
TOPIC_DEPTH = "depth/image"
TOPIC_DEPTH_INFO = "depth/camera_info"
TOPIC_COLORIZED = "depth/colorized"
TOPIC_POINTS = "depth/points"
TOPIC_RELATIVE = "depth/relative"
TOPIC_REFERENCE_DEPTH = "reference/depth"
TOPIC_REFERENCE_POINTS = "reference/points"


class Outputs(NamedTuple):
    depth: Any
    info: Any
    colorized: Any
    points: Any
    relative: Any             # None for metric models

    def watched(self) -> bool:
        """Whether an image or cloud output has a subscriber: what opens the input."""
        return any(pub is not None and pub.get_subscription_count() > 0
                   for pub in (self.depth, self.colorized, self.points, self.relative))


class CameraIO:
    """A camera's publishers, subscriptions, pipeline and counters.

    ``stats`` outlive a configure/cleanup cycle (they are totals since start); the rest
    is made at configure and dropped at cleanup.
    """

    def __init__(self, name: str, pipeline: CameraPipeline, stats: ProcessingStats) -> None:
        self.name = name                   # "" for the node's single, unnamed camera
        self.pipeline = pipeline
        self.stats = stats
        self.outputs: Outputs | None = None
        self.inputs: list = []             # subscriptions, while watched
        self.arrivals = 0                  # executor thread only
        self.last_published = -1           # publisher thread only
        self.frame_id = ""                 # the latest image's, for TF lookups
        self.cloud_builder = CloudBuilder()

    def topic(self, relative: str) -> str:
        return f"{self.name}/{relative}" if self.name else relative

    def say(self, text: str) -> str:
        """Prefix a log line with the camera's name when the node has several."""
        return f"[{self.name}] {text}" if self.name else text
