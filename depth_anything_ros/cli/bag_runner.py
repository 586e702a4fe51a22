"""The bag tool's side of the frame runner: reading a recording, writing outputs, telling the user.

The work on each frame (intake checks, inference lanes, the ordered finisher) is
``pipeline.runner``'s, the node's own, under the ``RECORDED`` policy: every frame, in
read order, in bounded memory, each paired with the CameraInfo recorded beside it. This
module holds what only a recording has:

- ``read_recording``: the messages of the bag in timestamp order, deserialized and routed
  as the node's subscriptions would route them (runs on the runner's reader thread);
- ``BagSink``: a finished frame's outputs serialized and written, all of them or none
  (a stop never leaves half a frame), and input messages copied in read order;
- ``BagReporter``: each problem said once per topic (the summary has the counts).
"""

from __future__ import annotations

from dataclasses import dataclass
import threading
from typing import Any, Callable, Optional

from depth_anything_ros.cli.bag_messages import MessageWriter, Serialized
from depth_anything_ros.cli.bag_topics import CameraTopics
from depth_anything_ros.pipeline.camera import FrameOutputs, Wanted, wanted_outputs
from depth_anything_ros.pipeline.camera_state import CameraState
from depth_anything_ros.pipeline.messages.output_layout import header_stamp_ns
from depth_anything_ros.pipeline.outputs import KIND_CAMERA_INFO, KIND_POINTS, Output, OUTPUTS
from depth_anything_ros.pipeline.parameters import NodeParams
from depth_anything_ros.pipeline.runner import Frame, FrameRunner, Level

# Reference inputs (bag_topics.CAMERA_INPUTS keys) and the scale_source that uses each.
REFERENCES = {"reference_depth": "depth", "reference_points": "points"}


@dataclass
class BagCamera:
    """One image topic: its runner state and its output connections."""

    topics: CameraTopics
    state: CameraState
    outputs: dict[str, Any]        # output key -> the writer's connection, in OUTPUTS order
    unreadable: int = 0            # messages that could not be deserialized (reader thread)

    @property
    def params(self) -> NodeParams:
        return self.state.params()


@dataclass(frozen=True)
class Copy:
    """An input message written unchanged beside the outputs (``--copy-input``)."""

    connection: Any
    timestamp: int
    data: Any


class BagSink:
    """Writes finished frames and copies to a rosbags writer (on the runner's finisher thread)."""

    def __init__(self, writer: Any, messages: MessageWriter, cameras: list[BagCamera]) -> None:
        self._writer = writer
        self._messages = messages
        self._cameras = {camera.state: camera for camera in cameras}
        self.copied = 0

    def wanted(self, camera: CameraState, p: NodeParams) -> Wanted:
        return wanted_outputs(camera.pipeline, p, self._cameras[camera].outputs.__contains__)

    def emit(self, camera: CameraState, frame: Frame, out: FrameOutputs) -> None:
        connections = self._cameras[camera].outputs
        header = self._messages.header(frame.header)
        built = []
        for output in OUTPUTS:
            if output.key in connections:
                data = self._build(output, out, header)
                if data is not None:
                    built.append((connections[output.key], data))
        for connection, data in built:
            self._writer.write(connection, frame.timestamp, data)

    def pass_through(self, item: Copy) -> None:
        self._writer.write(item.connection, item.timestamp, item.data)
        self.copied += 1

    def _build(self, output: Output, out: FrameOutputs, header: Any) -> Optional[Serialized]:
        """Serialize one output of a finished frame; None when the frame has none."""
        if output.kind == KIND_CAMERA_INFO:
            return self._messages.camera_info(*out.camera_info(), header)
        if output.kind == KIND_POINTS:
            return None if out.points is None else self._messages.cloud(out.points, out.colors,
                                                                        header)
        pixels = getattr(out, output.key)
        return None if pixels is None else self._messages.image(pixels, output.kind, header)


class BagReporter:
    """Says each problem the first time it happens on a topic; the summary has the counts."""

    def __init__(self, cameras: list[BagCamera], log: Callable[[str], None] = print) -> None:
        self._topics = {camera.state: camera.topics.image for camera in cameras}
        self.log = log
        self._said: set[tuple[str, str]] = set()
        self._lock = threading.Lock()   # the reader and the finisher both report

    def info(self, text: str) -> None:
        self.log(text)

    def problem(self, camera: CameraState, key: str, text: str, level: Level) -> None:
        topic = self._topics[camera]
        with self._lock:
            first = (topic, key) not in self._said
            self._said.add((topic, key))
        if first:
            more = " (further ones are only counted)" if level is Level.REJECTION else ""
            self.log(f"warning: {topic}: {text}{more}")


def read_recording(reader: Any, routes: dict[int, tuple[str, Optional[BagCamera]]],
                   copies: dict[int, Any], runner: FrameRunner,
                   reporter: BagReporter) -> None:
    """Feed every routed message of the recording to the runner, in timestamp order.

    ``routes`` maps each input connection id to what it is: ("image", camera), (a
    ``CAMERA_INPUTS`` key, camera) or ("copy", None) for a message only copied; ``copies``
    maps input connection ids to output connections when input messages are copied.
    """
    connections = [c for c in reader.connections if c.id in routes]
    for connection, timestamp, raw in reader.messages(connections=connections):
        if runner.stopping:
            return
        runner.advance(timestamp)
        kind, camera = routes[connection.id]
        copy = copies.get(connection.id)
        if copy is not None:
            runner.pass_through(Copy(copy, timestamp, raw))
        if camera is None or (kind in REFERENCES
                              and camera.params.scale_source != REFERENCES[kind]):
            continue   # recorded references are data unless the scale fit uses them
        msg = _deserialize(reader, camera, connection, raw, reporter)
        if msg is None:
            if kind == "image":
                camera.state.stats.frame_received()
                runner.progress(1)
            continue
        stamp = header_stamp_ns(msg.header)
        if kind == "image":
            runner.image(camera.state, msg.header, stamp, msg, camera.topics.compressed,
                         timestamp)
        elif kind == "camera_info":
            runner.camera_info(camera.state, msg, stamp)
        else:
            # A recording's TF is not read: the tool needs no tf2, so reference_extrinsic
            # places a cloud, as in a node without tf2_ros.
            runner.reference(camera.state, REFERENCES[kind], msg, stamp, connection.topic)


def _deserialize(reader: Any, camera: BagCamera, connection: Any, raw: bytes,
                 reporter: BagReporter) -> Optional[Any]:
    try:
        return reader.deserialize(raw, connection.msgtype)
    except Exception as exc:  # a malformed message must not end the run
        camera.unreadable += 1
        reporter.problem(camera.state, "unreadable",
                         f"skipping a message on {connection.topic} that cannot be "
                         f"deserialized ({type(exc).__name__}: {exc})", Level.WARNING)
        return None
