"""Which topics of a recording are cameras, what belongs to each, and where outputs go.

A camera recorded from a driver is an image topic with its CameraInfo beside it, in the
image_transport convention: ``/front/image_raw`` (or its ``/compressed`` transport) and
``/front/camera_info``. The node runs in that namespace, so its outputs are
``/front/depth/image`` and so on, and its parameters are those of
``/front/depth_anything``. Per-camera inputs besides the image are one table,
``CAMERA_INPUTS``, so a new one is one more entry there (and its handler in the
reader).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

from depth_anything_ros.pipeline.outputs import (KIND_BGR_IMAGE, KIND_CAMERA_INFO,
                                                 KIND_FLOAT_IMAGE, KIND_POINTS, OUTPUTS)

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
POINT_CLOUD = "sensor_msgs/msg/PointCloud2"
IMAGE_TYPES = (IMAGE, COMPRESSED)
NODE_NAME = "depth_anything"


@dataclass(frozen=True)
class CameraInput:
    """An input of the node besides the image: its name in the camera's namespace."""

    key: str
    name: str
    msgtypes: tuple[str, ...]


CAMERA_INPUTS = (CameraInput("camera_info", "camera_info", (CAMERA_INFO,)),
                 CameraInput("reference_depth", "reference/depth", (IMAGE,)),
                 CameraInput("reference_points", "reference/points", (POINT_CLOUD,)))


# The message type each output kind is written as.
MSGTYPES = {KIND_FLOAT_IMAGE: IMAGE, KIND_BGR_IMAGE: IMAGE, KIND_CAMERA_INFO: CAMERA_INFO,
            KIND_POINTS: POINT_CLOUD}
# image_transport variants that carry something other than a camera image.
NOT_CAMERA_SUFFIXES = ("/compressedDepth", "/theora")


def join(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def image_namespace(topic: str, compressed: bool) -> str:
    """Return the namespace a camera's image topic lives in ('' for the root)."""
    base = topic.removesuffix("/compressed") if compressed else topic
    return base.rstrip("/").rpartition("/")[0]


@dataclass(frozen=True)
class CameraTopics:
    """One camera of the recording: its image topic and the inputs found beside it."""

    image: str
    compressed: bool
    namespace: str
    inputs: Mapping[str, str]      # CameraInput.key -> topic, for those in the recording

    @property
    def node_name(self) -> str:
        return join(self.namespace, NODE_NAME)

    def output(self, key: str) -> str:
        return join(self.namespace, next(o.name for o in OUTPUTS if o.key == key))


def _is_generated(topic: str) -> bool:
    """Whether an image topic is an output of the node or a per-camera input, not a camera."""
    names = [o.name for o in OUTPUTS] + [i.name for i in CAMERA_INPUTS]
    return topic.endswith(NOT_CAMERA_SUFFIXES) or any(
        topic == "/" + name or topic.endswith("/" + name) for name in names)


def find_cameras(topics: Mapping[str, Optional[str]], requested: Sequence[str] = ()
                 ) -> tuple[list[CameraTopics], list[str]]:
    """Return the cameras to process and notes on what was left out.

    ``topics`` maps each topic of the recording to its type (None: several types).
    ``requested`` are --image-topic values; empty takes every Image and CompressedImage
    topic except the node's own outputs, and a compressed transport of a raw topic that
    is also recorded. Raises ValueError (one line) for an unknown topic, a wrong type, no
    camera at all, or two cameras whose outputs would share topics.
    """
    notes: list[str] = []
    if requested:
        for topic in requested:
            if topic not in topics:
                known = sorted(t for t, kind in topics.items() if kind in IMAGE_TYPES)
                raise ValueError(f"topic {topic} is not in the bag; its image topics are: "
                                 f"{', '.join(known) or 'none'}")
            if topics[topic] not in IMAGE_TYPES:
                raise ValueError(f"topic {topic} is {topics[topic] or 'of several types'}, "
                                 f"not {IMAGE} or {COMPRESSED}")
        chosen = list(dict.fromkeys(requested))
    else:
        chosen = []
        for topic, kind in sorted(topics.items()):
            if kind not in IMAGE_TYPES or _is_generated(topic):
                continue
            raw = topic.removesuffix("/compressed")
            if kind == COMPRESSED and raw != topic and topics.get(raw) == IMAGE:
                notes.append(f"{topic}: skipped, the raw {raw} is in the bag too")
                continue
            chosen.append(topic)
        if not chosen:
            raise ValueError(f"the bag has no {IMAGE} or {COMPRESSED} topic")
    cameras = [_camera(topic, topics[topic] == COMPRESSED, topics, notes) for topic in chosen]
    by_namespace: dict[str, str] = {}
    for camera in cameras:
        other = by_namespace.setdefault(camera.namespace, camera.image)
        if other != camera.image:
            raise ValueError(f"{other} and {camera.image} would both write "
                             f"{camera.output('depth')} and the other outputs of namespace "
                             f"'{camera.namespace or '/'}'; choose one with --image-topic")
    return cameras, notes


def _camera(topic: str, compressed: bool, topics: Mapping[str, Optional[str]],
            notes: list[str]) -> CameraTopics:
    namespace = image_namespace(topic, compressed)
    inputs = {}
    for wanted in CAMERA_INPUTS:
        name = join(namespace, wanted.name)
        kind = topics.get(name)
        if kind in wanted.msgtypes:
            inputs[wanted.key] = name
        elif name in topics:
            notes.append(f"{topic}: not using {name}, it is {kind or 'of several types'}, "
                         f"not {' or '.join(wanted.msgtypes)}")
    return CameraTopics(topic, compressed, namespace, inputs)
