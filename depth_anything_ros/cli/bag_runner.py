"""Every frame of a recording through the node's pipeline: overlapped, in order, interruptible.

Three kinds of thread share the work, so that reading, decoding, finishing and writing
hide behind inference:

- a reader thread reads the bag in timestamp order and does what the node's
  subscription callbacks do: CameraInfo to its camera's pipeline, raw images decoded (a
  view) and compressed ones checked by their header, stamps checked (``check_stamp``);
- one thread per inference lane runs ``pipeline.infer`` (compressed images are decoded
  there, as in the node's inference threads); OpenVINO releases the GIL, so with the
  THROUGHPUT hint the lanes run the device's streams in parallel;
- the caller's thread, the writer, finishes frames strictly in read order (``finish``
  keeps each camera's history), builds their messages and writes them, with input
  messages copied in between when asked.

Nothing is dropped: the reader waits while ``2 x lanes`` frames are in flight (and while
``MAX_QUEUED`` messages wait for the writer). That bound stays under the pipeline's
calibration ring, so the CameraInfo of every queued frame is still there when the frame
is inferred. A frame is paired with its calibration the moment it is read if the
CameraInfo with its stamp came first, else when that CameraInfo, the camera's next frame
or ``PAIRING_WINDOW_NS`` more of the recording has been read; the calibration then chosen
is the one it gets, however far the reader has got by the time a lane takes it, so the
output does not depend on thread timing.

A stop request (SIGINT, SIGTERM) ends reading; frames already being inferred are
finished and written, queued ones are discarded, and every frame written is complete
(all of its outputs), so the caller can close a valid bag holding exactly those.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
import queue
import threading
from typing import Any, Callable, Optional, Protocol, Sequence

from depth_anything_ros.cli.bag_messages import MessageWriter, stamp_ns
from depth_anything_ros.cli.bag_topics import CameraTopics, OUTPUT_KEYS
from depth_anything_ros.pipeline.camera import CALIBRATION_RING, CameraPipeline, NetworkOutput
from depth_anything_ros.pipeline.camera import Wanted
from depth_anything_ros.pipeline.image_input import (check_compressed_header, compressed_to_array,
                                                     DecodedImage, image_to_array, ImageDecodeError)
from depth_anything_ros.pipeline.notes import Note, REJECT_STAMP_BACKWARDS
from depth_anything_ros.pipeline.output_layout import camera_info_calibration
from depth_anything_ros.pipeline.parameters import NodeParams
from depth_anything_ros.pipeline.reference_input import (cloud_points, reference_depth,
                                                         ReferenceDecodeError)
from depth_anything_ros.pipeline.stamp_order import StampVerdict

# Frames read but not yet written; also bounded by 2 x lanes once the lanes are known.
MAX_IN_FLIGHT = CALIBRATION_RING // 2
# Messages queued for the writer (frames and copies): bounds memory with --copy-input.
MAX_QUEUED = 256
# Bag time after a frame within which its CameraInfo may still come.
PAIRING_WINDOW_NS = 1_000_000_000
# Seconds between checks of the stop flag while a thread waits.
POLL_S = 0.1


class Sink(Protocol):
    """Where messages go: a rosbags Writer."""

    def write(self, connection: Any, timestamp: int, data: Any) -> None:
        """Write one serialized message."""


@dataclass
class Camera:
    """One image topic with its pipeline, parameters and output connections."""

    topics: CameraTopics
    pipeline: CameraPipeline
    params: NodeParams
    outputs: dict[str, Any]        # output key -> the writer's connection, in OUTPUTS order
    frames: int = 0                # images read
    written: int = 0               # frames whose outputs were all written
    rejected: Counter = field(default_factory=Counter)
    failed: int = 0
    unreadable: int = 0            # messages that could not be deserialized
    stamp_restarts: int = 0
    held: Optional["_Frame"] = None  # read, waiting for its CameraInfo

    @property
    def wanted(self) -> Wanted:
        metres = self.pipeline.has_metres(self.params)
        return Wanted(depth=metres and "depth" in self.outputs,
                      points=metres and "points" in self.outputs,
                      colorized="colorized" in self.outputs,
                      relative="relative" in self.outputs)


class _Frame:
    """A frame from reading to writing; ``done`` is set once a lane has handled it."""

    def __init__(self, camera: Camera, timestamp: int, header: Any,
                 image: DecodedImage | Any) -> None:
        self.camera = camera
        self.timestamp = timestamp
        self.header = header
        self.stamp = stamp_ns(header)
        self.image = image            # DecodedImage, or a CompressedImage to decode
        self.done = threading.Event()
        self.net: Optional[NetworkOutput] = None
        self.rejection: Optional[ImageDecodeError] = None
        self.error: Optional[Exception] = None
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        self.done.set()


@dataclass(frozen=True)
class _Copy:
    connection: Any
    timestamp: int
    data: Any


@dataclass(frozen=True)
class Lanes:
    """How many frames are inferred at once, and what the compiled model said about it."""

    count: int
    streams: int
    precision: str
    size: tuple[int, int]


class BagRunner:
    """Runs one recording through its cameras' pipelines into a sink.

    ``routes`` maps each input connection id to what it is: ("image", camera), (a
    ``CAMERA_INPUTS`` key, camera) or ("copy", None) for a message only copied; ``copies`` maps
    input connection ids to output connections when input messages are copied.
    """

    def __init__(self, reader: Any, sink: Sink, cameras: Sequence[Camera],
                 routes: dict[int, tuple[str, Optional[Camera]]], copies: dict[int, Any],
                 messages: MessageWriter, stop: threading.Event, workers: int = 1) -> None:
        self._reader = reader
        self._sink = sink
        self.cameras = list(cameras)
        self._routes = routes
        self._copies = copies
        self._messages = messages
        self._stop = stop
        self._workers = workers
        # Told of each frame done, and of each problem the first time: set before run().
        self.progress: Callable[[int], None] = lambda count: None
        self.log: Callable[[str], None] = print
        self._said: set[tuple[str, str]] = set()
        self._count_lock = threading.Lock()
        self._work: queue.Queue[Optional[_Frame]] = queue.Queue()
        self._out: queue.Queue[_Frame | _Copy | None] = queue.Queue(MAX_QUEUED)
        self._flight = threading.Condition()
        self._in_flight = 0
        self._limit = MAX_IN_FLIGHT
        self._threads: list[threading.Thread] = []
        self._error: Optional[BaseException] = None
        self._writer_done = threading.Event()
        self.lanes: Optional[Lanes] = None
        self.copied = 0
        # A handler per bag_topics.CAMERA_INPUTS key: an input the node takes beside the
        # image (for instance a reference for the scale fit) is one more entry here.
        self._inputs: dict[str, Callable[[Camera, Any, bytes], None]] = {
            "camera_info": self._read_camera_info,
            "reference_depth": self._read_reference_depth,
            "reference_points": self._read_reference_points}

    # --- reader ---------------------------------------------------------------------------

    def run(self) -> None:
        """Process the whole recording, or up to a stop request; raise what broke it.

        The caller's thread writes, since a sink may only work in the thread that opened
        it (SQLite's does); reading gets a thread of its own.
        """
        reader = threading.Thread(target=self._read_then_end, name="bag_reader", daemon=True)
        reader.start()
        self._write_all()
        reader.join()
        if self._error is not None:
            raise self._error

    def _read_then_end(self) -> None:
        try:
            self._read_all()
        except BaseException as exc:  # reported by run() once every thread has stopped
            self._error = self._error or exc
            self._stop.set()
        finally:
            self._shut_down()

    def _read_all(self) -> None:
        connections = [c for c in self._reader.connections if c.id in self._routes]
        for connection, timestamp, raw in self._reader.messages(connections=connections):
            if self._stop.is_set():
                return
            for held in [c.held for c in self.cameras if c.held is not None]:
                if held.timestamp + PAIRING_WINDOW_NS < timestamp:
                    self._release(held)
            kind, camera = self._routes[connection.id]
            copy = self._copies.get(connection.id)
            if copy is not None:
                self._queue(_Copy(copy, timestamp, raw))
            if kind == "image":
                self._read_image(camera, connection, timestamp, raw)
            elif kind in self._inputs:
                self._inputs[kind](camera, connection, raw)

    def _deserialize(self, camera: Camera, connection: Any, raw: bytes) -> Optional[Any]:
        try:
            return self._reader.deserialize(raw, connection.msgtype)
        except Exception as exc:  # a malformed message must not end the run
            camera.unreadable += 1
            self._say(camera, "unreadable", f"skipping a message on {connection.topic} that "
                      f"cannot be deserialized ({type(exc).__name__}: {exc})")
            return None

    def _read_camera_info(self, camera: Camera, connection: Any, raw: bytes) -> None:
        msg = self._deserialize(camera, connection, raw)
        if msg is None:
            return
        stamp = stamp_ns(msg.header)
        self._note(camera, camera.pipeline.add_calibration(camera_info_calibration(msg), stamp))
        held = camera.held
        if held is not None and held.stamp == stamp:
            self._release(held)

    def _read_reference_depth(self, camera: Camera, connection: Any, raw: bytes) -> None:
        self._read_reference(camera, connection, raw, "depth", reference_depth,
                             camera.pipeline.alignment.add_depth)

    def _read_reference_points(self, camera: Camera, connection: Any, raw: bytes) -> None:
        # A recording's TF is not read: the tool needs no tf2, so reference_extrinsic
        # places the cloud, as in a node without tf2_ros.
        self._read_reference(camera, connection, raw, "points", cloud_points,
                             camera.pipeline.alignment.add_points)

    def _read_reference(self, camera: Camera, connection: Any, raw: bytes, source: str,
                        decode: Callable[[Any], Any],
                        add: Callable[[Any, int, NodeParams], Optional[Note]]) -> None:
        """Give the camera's alignment a recorded reference, as the node's subscription does.

        Only with the matching ``scale_source``; recorded references are otherwise data.
        """
        if camera.params.scale_source != source:
            return
        msg = self._deserialize(camera, connection, raw)
        if msg is None:
            return
        try:
            reference = decode(msg)
        except ReferenceDecodeError as exc:
            self._reject(camera, exc.kind, f"ignoring {connection.topic}: {exc}")
            return
        self._note(camera, add(reference, stamp_ns(msg.header), camera.params))

    def _read_image(self, camera: Camera, connection: Any, timestamp: int, raw: bytes) -> None:
        camera.frames += 1
        msg = self._deserialize(camera, connection, raw)
        if msg is None:
            self.progress(1)
            return
        p = camera.params
        try:
            if camera.topics.compressed:
                check_compressed_header(msg, p.max_pixels)
                image = msg
            else:
                image = image_to_array(msg, p.max_pixels)
        except ImageDecodeError as exc:
            self._reject(camera, exc.kind, f"ignoring image: {exc}")
            self.progress(1)
            return
        frame = _Frame(camera, timestamp, msg.header, image)
        verdict, back_s = camera.pipeline.check_stamp(frame.stamp)
        if verdict is StampVerdict.BACKWARDS:
            self._reject(camera, REJECT_STAMP_BACKWARDS,
                         f"skipping image stamped {back_s:.3f} s before the previous one")
            self.progress(1)
            return
        if verdict is StampVerdict.RESTART:
            camera.stamp_restarts += 1
            self._say(camera, "stamp_restart", f"image stamps jumped back by {back_s:.3f} s; "
                      "taking it as the recording starting over")
        self._wait_for_room()
        if self._stop.is_set():
            return
        with self._flight:
            self._in_flight += 1
        self._queue(frame)
        # Held until its CameraInfo is read, unless that came first (or there is none);
        # the camera's previous frame, if still held, waits no longer.
        previous, camera.held = camera.held, frame
        if previous is not None:
            self._release(previous)
        match = camera.pipeline.calibrations.match(frame.stamp)
        if "camera_info" not in camera.topics.inputs or (match is not None and match.exact):
            self._release(frame)

    def _wait_for_room(self) -> None:
        """Block while the in-flight bound is reached; held frames go to the lanes first."""
        with self._flight:
            if self._in_flight < self._limit:
                return
        self._release_held()
        with self._flight:
            while self._in_flight >= self._limit and not self._stop.is_set():
                self._flight.wait(POLL_S)

    def _queue(self, item: _Frame | _Copy) -> None:
        """Hand an item to the writer, waiting while the queue is full.

        Held frames are released before waiting: the writer may be waiting for one.
        """
        try:
            self._out.put_nowait(item)
            return
        except queue.Full:
            self._release_held()
        while not self._stop.is_set():
            try:
                self._out.put(item, timeout=POLL_S)
                return
            except queue.Full:
                continue

    def _release_held(self) -> None:
        for camera in self.cameras:
            if camera.held is not None:
                self._release(camera.held)

    def _release(self, frame: _Frame) -> None:
        """Fix the frame's calibration now and hand it to a lane.

        A frame without a CameraInfo of its own stamp gets the latest one, as in the node;
        re-adding that one under the frame's stamp keeps it, whatever arrives before a lane
        runs the frame. (Unstamped frames have no stamp to pin to.)
        """
        camera = frame.camera
        if camera.held is frame:
            camera.held = None
        match = camera.pipeline.calibrations.match(frame.stamp)
        if match is not None and not match.exact and frame.stamp:
            camera.pipeline.add_calibration(match.calibration, frame.stamp)
        if self.lanes is None:
            self._infer(frame, 0)
            if frame.error is not None and frame.net is None:
                raise frame.error
            if frame.net is not None:
                self._start_lanes(frame)
            return
        self._work.put(frame)

    def _start_lanes(self, first: _Frame) -> None:
        """Size the lanes from the model compiled for the first frame, then start them."""
        pipeline, image = first.camera.pipeline, first.net.image
        height, width = image.pixels.shape[:2]
        compiled = pipeline.engine.compiled(height, width, image.order, pipeline.output_size(
            image.pixels.shape, first.camera.params))
        optimal = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        count = self._workers if self._workers > 1 else max(1, optimal)
        self.lanes = Lanes(count, int(compiled.get_property("NUM_STREAMS")),
                           compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name(),
                           (width, height))
        with self._flight:
            self._limit = min(MAX_IN_FLIGHT, 2 * count)
        self.log(f"compiled for {width}x{height} images: computing in {self.lanes.precision}, "
                 f"{self.lanes.streams} stream(s), {count} inference lane(s)")
        for lane in range(count):
            thread = threading.Thread(target=self._infer_all, args=(lane,),
                                      name=f"bag_inference_{lane}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _shut_down(self) -> None:
        """Let every frame reach an end (processed or cancelled), then stop the threads."""
        for camera in self.cameras:
            held = camera.held
            if held is None:
                continue
            if not self._stop.is_set() and self._error is None:
                try:
                    self._release(held)
                    continue
                except Exception as exc:  # the first frame's compile: reported by run()
                    self._error = exc
            held.cancel()
            camera.held = None
        for _ in self._threads:
            self._work.put(None)
        for thread in self._threads:
            thread.join()
        while not self._writer_done.is_set():   # it stops early on a stop or an error
            try:
                self._out.put(None, timeout=POLL_S)
                return
            except queue.Full:
                continue

    # --- inference lanes ----------------------------------------------------------------

    def _infer_all(self, lane: int) -> None:
        while True:
            frame = self._work.get()
            if frame is None:
                return
            if self._stop.is_set():
                frame.cancel()
                continue
            self._infer(frame, lane)

    def _infer(self, frame: _Frame, lane: int) -> None:
        camera, p = frame.camera, frame.camera.params
        try:
            image = frame.image
            if not isinstance(image, DecodedImage):
                image = compressed_to_array(image, p.max_pixels)
            frame.net = camera.pipeline.infer(image, frame.stamp, p, lane)
        except ImageDecodeError as exc:
            frame.rejection = exc
        except Exception as exc:  # counted as a failed frame by the writer
            frame.error = exc
        frame.image = None
        frame.done.set()

    # --- writer ----------------------------------------------------------------------------

    def _write_all(self) -> None:
        try:
            while True:
                item = self._out.get()
                if item is None:
                    return
                if isinstance(item, _Copy):
                    self._sink.write(item.connection, item.timestamp, item.data)
                    self.copied += 1
                    continue
                while not item.done.wait(POLL_S):
                    pass
                if item.cancelled:
                    return
                self._write_frame(item)
                with self._flight:
                    self._in_flight -= 1
                    self._flight.notify()
                self.progress(1)
        except BaseException as exc:  # a full disk, say: stop everything, report it
            self._error = exc
            self._stop.set()
        finally:
            self._writer_done.set()

    def _write_frame(self, frame: _Frame) -> None:
        camera = frame.camera
        if frame.rejection is not None:
            self._reject(camera, frame.rejection.kind, f"ignoring image: {frame.rejection}")
            return
        if frame.error is not None:
            camera.failed += 1
            self._say(camera, "failed", f"frame skipped: {type(frame.error).__name__}: "
                      f"{frame.error}")
            return
        out = camera.pipeline.finish(frame.net, frame.stamp, camera.params, camera.wanted)
        frame.net = None
        for note in out.notes:
            self._note(camera, note)
        header = self._messages.header(frame.header)
        built = []
        for key in OUTPUT_KEYS:
            if key in camera.outputs:
                data = self._build(key, out, header)
                if data is not None:
                    built.append((camera.outputs[key], data))
        for connection, data in built:
            self._sink.write(connection, frame.timestamp, data)
        camera.written += 1

    def _build(self, key: str, out: Any, header: Any) -> Any:
        """Serialize one output of a finished frame; None when the frame has none."""
        messages = self._messages
        if key == "camera_info":
            return messages.camera_info(out.intrinsics, out.calibration, header)
        if key == "points":
            if out.points is None:
                return None
            return messages.cloud(out.points, out.colors, header)
        pixels, encoding = {"relative": (out.relative, "32FC1"), "depth": (out.depth, "32FC1"),
                            "colorized": (out.colorized, "bgr8")}[key]
        return None if pixels is None else messages.image(pixels, encoding, header)

    # --- counting and telling ------------------------------------------------------------

    def _note(self, camera: Camera, note: Optional[Note]) -> None:
        if note is None:
            return
        if note.is_rejection:
            self._reject(camera, note.key, note.text)
        else:
            self._say(camera, note.key, note.text)

    def _reject(self, camera: Camera, kind: str, text: str) -> None:
        with self._count_lock:   # the reader and the writer both count
            camera.rejected[kind] += 1
        self._say(camera, kind, text + " (further ones are only counted)")

    def _say(self, camera: Camera, key: str, text: str) -> None:
        """Log a problem the first time it happens on a topic; the summary has the counts."""
        with self._count_lock:
            first = (camera.topics.image, key) not in self._said
            self._said.add((camera.topics.image, key))
        if first:
            self.log(f"warning: {camera.topics.image}: {text}")
