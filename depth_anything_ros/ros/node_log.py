"""What the node says in its log: the runner's reports, rate-limited, and its configuration.

``NodeLog`` writes the runner's reports at most once per camera and reason every
``WARN_THROTTLE_S`` (rclpy's ``throttle_duration_sec`` throttles per call site, so one
noisy reason would hide the others); ``log_configuration`` says, at configure, which
model runs where and on which topics.
"""

from __future__ import annotations

from typing import Any, Callable

from depth_anything_ros.inference.engine import DepthEngine
from depth_anything_ros.inference.metadata import RELATIVE_INVERSE_DEPTH
from depth_anything_ros.pipeline.camera_state import CameraState
from depth_anything_ros.pipeline.parameters import NodeParams
from depth_anything_ros.pipeline.runner import Level
from depth_anything_ros.pipeline.stats import KeyedRateLimit
from depth_anything_ros.ros.camera_io import (TOPIC_CAMERA_INFO, TOPIC_COLORIZED,
                                              TOPIC_COMPRESSED, TOPIC_DEPTH, TOPIC_IMAGE,
                                              TOPIC_POINTS, TOPIC_REFERENCE_DEPTH,
                                              TOPIC_REFERENCE_POINTS, TOPIC_RELATIVE)

WARN_THROTTLE_S = 5.0


class NodeLog:
    """The runner's reports as node log lines, rate-limited per camera and reason."""

    def __init__(self, logger: Any) -> None:
        self._logger = logger
        self._limit = KeyedRateLimit(WARN_THROTTLE_S)

    def info(self, text: str) -> None:
        self._logger.info(text)

    def problem(self, camera: CameraState, key: str, text: str, level: Level) -> None:
        """Log unless this camera's reason was logged within the last WARN_THROTTLE_S.

        A rejection's line then says how many were not.
        """
        held = self._limit.allow(f"{camera.name}:{key}")
        if held is None:
            return
        if level is Level.ERROR:
            self._logger.error(camera.say(text))
            return
        if level is Level.REJECTION and held:
            text += f" [{held} more {key} rejection(s) not logged]"
        self._logger.warning(camera.say(text))


def log_configuration(node: Any, engine: DepthEngine, p: NodeParams,
                      topics: list[Callable[[str], str]], with_tf: bool) -> None:
    """Log the model, device and input topics; ``topics``: each camera's topic naming."""
    logger = node.get_logger()
    meta = engine.metadata
    net_h, net_w = engine.network_size
    if engine.device_name != p.device:
        logger.warning(
            f"device '{p.device}' is not available (OpenVINO sees "
            f"{', '.join(engine.core.available_devices)}); running on "
            f"{engine.device_name} because allow_cpu_fallback is true")
    image_topic = TOPIC_COMPRESSED if p.input_transport == "compressed" else TOPIC_IMAGE
    inputs = "; ".join(f"{node.resolve_topic_name(topic(image_topic))} + "
                       f"{node.resolve_topic_name(topic(TOPIC_CAMERA_INFO))}"
                       for topic in topics)
    model = meta.model_name or meta.encoder  # DA3 IRs name their model, V2 ones the encoder
    logger.info(
        f"{model} {meta.depth_type} model {engine.model_path.name} "
        f"({engine.model_choice}), network {net_h}x{net_w}, on {engine.device_name}; "
        f"input {inputs}")
    if p.scale_source != "none":
        reference = {"depth": TOPIC_REFERENCE_DEPTH, "points": TOPIC_REFERENCE_POINTS}.get(
            p.scale_source)
        where = (f"from the floor {p.camera_height} m below the camera" if not reference
                 else "from " + ", ".join(node.resolve_topic_name(topic(reference))
                                          for topic in topics))
        placed = ""
        if p.scale_source == "points":
            placed = ("; clouds placed with TF" if with_tf else
                      "; tf2_ros is not installed: clouds placed with reference_extrinsic")
        logger.info(f"metric scale aligned {where}{placed}")
    elif not meta.is_metric:
        kind = "inverse depth" if meta.depth_meaning == RELATIVE_INVERSE_DEPTH else "depth"
        logger.info(
            f"relative model: outputs are relative {kind}, not metres; publishing "
            f"{TOPIC_RELATIVE} and {TOPIC_COLORIZED}. Set relative_scale > 0 to also publish "
            f"{TOPIC_DEPTH} and {TOPIC_POINTS}.")
