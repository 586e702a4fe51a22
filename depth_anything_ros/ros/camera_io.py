"""One camera's share of the node's ROS side: its topics, publishers and subscriptions.

The node serves one camera on ``image``/``camera_info``, or several named by the
``cameras`` parameter, each under its own prefix (``front/image`` ... ``front/depth/points``)
relative to the node's namespace, so each can be remapped alone. What the camera's frames
go through (pipeline, counters, ordering) is its ``CameraState``, owned by the runner.
"""

from __future__ import annotations

from typing import Any, Optional

from depth_anything_ros.pipeline.camera_state import CameraState
from depth_anything_ros.pipeline.outputs import IMAGE_OUTPUT_KEYS, OUTPUTS
from depth_anything_ros.ros.cloud_msg import CloudBuilder

# Input topic names relative to the camera's prefix; the launch file remaps them.
TOPIC_IMAGE = "image"
TOPIC_COMPRESSED = "image/compressed"
TOPIC_CAMERA_INFO = "camera_info"
TOPIC_REFERENCE_DEPTH = "reference/depth"
TOPIC_REFERENCE_POINTS = "reference/points"
# Output topic names, from the one output table.
_TOPICS = {output.key: output.name for output in OUTPUTS}
TOPIC_DEPTH = _TOPICS["depth"]
TOPIC_DEPTH_INFO = _TOPICS["camera_info"]
TOPIC_COLORIZED = _TOPICS["colorized"]
TOPIC_POINTS = _TOPICS["points"]
TOPIC_RELATIVE = _TOPICS["relative"]


class CameraIO:
    """A camera's runner state with its publishers (while configured) and subscriptions."""

    def __init__(self, state: CameraState) -> None:
        self.state = state
        self.outputs: Optional[dict[str, Any]] = None   # output key -> lifecycle publisher
        self.inputs: list = []             # subscriptions, while watched
        self.cloud_builder = CloudBuilder()

    @property
    def name(self) -> str:
        return self.state.name             # "" for the node's single, unnamed camera

    def topic(self, relative: str) -> str:
        return f"{self.name}/{relative}" if self.name else relative

    def subscribed(self, key: str) -> bool:
        """Whether output ``key`` exists and has a subscriber."""
        pub = None if self.outputs is None else self.outputs.get(key)
        return pub is not None and pub.get_subscription_count() > 0

    def watched(self) -> bool:
        """Whether an image or cloud output has a subscriber: what opens the input."""
        return any(self.subscribed(key) for key in IMAGE_OUTPUT_KEYS)
