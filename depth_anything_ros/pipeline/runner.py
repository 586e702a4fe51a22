"""One frame runner for the node and the bag tool: intake, inference lanes, ordered finisher, sink.

Both callers need the same work done, in the same order, and say the same things about it:

- **intake** (the caller's one input thread: the node's subscription callbacks, the bag
  tool's reader): a raw image is decoded (a view) and a compressed one checked by its
  header, its stamp is checked against the camera's previous ones, CameraInfo goes to the
  camera's calibration ring, metric references to its alignment;
- **N inference lanes** (threads this module starts): a compressed image is decoded, the
  calibration picked, the image rectified and the network run (``CameraPipeline.infer``,
  which keeps no state, so lanes need no lock). OpenVINO releases the GIL, so with the
  THROUGHPUT hint the lanes use the device's parallel streams. One rule sizes them:
  ``workers`` when set, else the compiled model's OPTIMAL_NUMBER_OF_INFER_REQUESTS, read
  once the first frame has compiled it;
- **the finisher** (one thread): finishes frames in order (``CameraPipeline.finish``
  keeps each camera's history), hands the outputs to the **sink** (the node's
  publishers, the bag writer) and counts.

The caller picks the policy. ``LIVE``: each camera keeps only its newest frame until a
lane is free (``FrameScheduler``: the camera that waited longest goes first), an
overwritten frame counts as dropped, and a camera's frames are finished in the order
lanes took them, so none goes back in time. ``RECORDED``: every frame is inferred and
finished in read order, with at most ``2 x lanes`` frames (``MAX_IN_FLIGHT`` at most) in
flight, so memory stays bounded however long the recording; a frame waits for the
CameraInfo recorded beside it (until that one, the camera's next frame or
``PAIRING_WINDOW_NS`` more of the recording has been read) and its calibration is then
fixed, so the output does not depend on thread timing.

Frames, counts and the published frame's description move between threads by hand-off
only: queues, the locked calibration ring and alignment, and ``ProcessingStats``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
import enum
import queue
import threading
import time
from typing import Any, Callable, Hashable, Optional, Protocol, Sequence

from depth_anything_ros.inference.engine import ModelLoadError
from depth_anything_ros.pipeline.camera import CALIBRATION_RING, FrameOutputs, NetworkOutput, Wanted
from depth_anything_ros.pipeline.camera_state import CameraState
from depth_anything_ros.pipeline.frame_scheduler import FrameScheduler
from depth_anything_ros.pipeline.messages.image_input import (check_compressed_header,
                                                              compressed_to_array, DecodedImage,
                                                              image_to_array, ImageDecodeError)
from depth_anything_ros.pipeline.messages.output_layout import camera_info_calibration
from depth_anything_ros.pipeline.messages.reference_input import (cloud_points, reference_depth,
                                                                  ReferenceDecodeError)
from depth_anything_ros.pipeline.notes import Note, REJECT_STAMP_BACKWARDS
from depth_anything_ros.pipeline.parameters import NodeParams
from depth_anything_ros.pipeline.stamp_order import (RESTART_AFTER_FRAMES, RESTART_AFTER_S,
                                                     StampVerdict)

# Recorded frames read but not yet finished; also bounded by 2 x lanes once sized. Under
# the calibration ring's size, so a queued frame's CameraInfo is still there.
MAX_IN_FLIGHT = CALIBRATION_RING // 2
# Items waiting for the finisher (frames and passed-through messages): bounds memory.
MAX_QUEUED = 256
# Bag time after a frame within which its CameraInfo may still come.
PAIRING_WINDOW_NS = 1_000_000_000
# The most lanes the compiled model's own figure may ask for (the parameter's maximum).
MAX_LANES = 16
# Seconds between checks of the stop flag while a recorded run waits.
POLL_S = 0.1


class Policy(enum.Enum):
    LIVE = "live"           # newest frame wins; stale ones are dropped and counted
    RECORDED = "recorded"   # every frame, in order, in bounded memory


class Level(enum.Enum):
    REJECTION = "rejection"   # a refused message, counted by kind
    WARNING = "warning"
    ERROR = "error"           # a frame that failed


class Sink(Protocol):
    """Where finished frames go: the node's publishers or the bag writer."""

    def wanted(self, camera: CameraState, p: NodeParams) -> Wanted:
        """Return the outputs to compute for a frame starting now (none: it is skipped)."""

    def emit(self, camera: CameraState, frame: "Frame", out: FrameOutputs) -> None:
        """Publish or write one finished frame's outputs (the finisher's thread)."""

    def pass_through(self, item: Any) -> None:
        """Write an item handed to ``RECORDED`` intake unchanged, in read order."""


class Reporter(Protocol):
    """How the caller tells its user: the node's rate-limited log, the bag's first-time lines."""

    def info(self, text: str) -> None:
        """One line once, e.g. how the model was compiled."""

    def problem(self, camera: CameraState, key: str, text: str, level: Level) -> None:
        """Report a rejection (already counted), a warning or a failed frame of ``camera``."""


@dataclass(eq=False)
class Frame:
    """One image from intake to the sink."""

    camera: CameraState
    header: Any                   # the input message's header, copied to every output
    stamp: int                    # the header's stamp in nanoseconds
    image: Any                    # DecodedImage, or a compressed message a lane decodes
    sequence: int                 # arrival order; stamps may restart, this never does
    timestamp: int = 0            # recorded: the bag time the outputs are written at
    params: Optional[NodeParams] = None    # set by the lane: the frame is finished with them
    wanted: Optional[Wanted] = None
    net: Optional[NetworkOutput] = None
    inference_s: float = 0.0
    rejection: Optional[ImageDecodeError] = None
    error: Optional[Exception] = None
    cancelled: bool = False       # recorded: stopped before a lane ran it
    finished: bool = field(default=False, repr=False)   # the outbox's: a lane is done


@dataclass(eq=False)
class _PassThrough:
    item: Any
    finished: bool = True


class _Outbox:
    """Items in order per stream; ``take`` returns the head of a stream once it is finished.

    ``RECORDED`` uses one stream (read order), ``LIVE`` one per camera, so a slow frame
    of one camera never holds back another camera's.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._streams: dict[Hashable, deque] = {}
        self._size = 0
        self._closed = self._discarded = False

    def add(self, stream: Hashable, item: Frame | _PassThrough) -> None:
        with self._cond:
            self._streams.setdefault(stream, deque()).append(item)
            self._size += 1
            self._cond.notify_all()

    def wait_for_room(self, capacity: int, stop: threading.Event) -> None:
        with self._cond:
            while self._size >= capacity and not stop.is_set() and not self._discarded:
                self._cond.wait(POLL_S)

    def full(self, capacity: int) -> bool:
        with self._cond:
            return self._size >= capacity

    def finish(self, item: Frame) -> None:
        with self._cond:
            item.finished = True
            self._cond.notify_all()

    def take(self) -> Optional[Frame | _PassThrough]:
        """Wait for a finished head; None once closed and empty, or discarded."""
        with self._cond:
            while True:
                if self._discarded:
                    return None
                for items in self._streams.values():
                    if items and items[0].finished:
                        self._size -= 1
                        self._cond.notify_all()
                        return items.popleft()
                if self._closed and not self._size:
                    return None
                self._cond.wait()

    def close(self, discard: bool = False) -> None:
        """No more items; with ``discard``, drop those waiting and wake everyone now."""
        with self._cond:
            self._closed = True
            if discard:
                self._discarded = True
                self._streams.clear()
                self._size = 0
            self._cond.notify_all()


def lane_count(requested: int, optimal: int) -> int:
    """Return ``requested`` when set (> 0), else the compiled model's optimal request count."""
    return requested if requested > 0 else min(MAX_LANES, max(1, optimal))


class FrameRunner:
    """Runs the frames of ``cameras`` through their pipelines into ``sink``.

    ``workers``: lanes, 0 for the compiled model's optimal number. ``clock_ns`` (live)
    gives the time that images' stamps are compared with for the end-to-end latency.
    ``stop`` (recorded) ends a run early: reading stops, frames in a lane are finished
    and emitted, queued ones are discarded.
    """

    def __init__(self, cameras: Sequence[CameraState], sink: Sink, reporter: Reporter,
                 policy: Policy, workers: int = 0,
                 clock_ns: Optional[Callable[[], int]] = None,
                 stop: Optional[threading.Event] = None) -> None:
        self.cameras = list(cameras)
        self.policy = policy
        self._sink = sink
        self._reporter = reporter
        self._workers = workers
        self._clock_ns = clock_ns
        self._stop = stop or threading.Event()
        # Told of each image that reached its end (finished, refused or failed).
        self.progress: Callable[[int], None] = lambda count: None
        # Told once when the model cannot run at all (no compile ever succeeded).
        self.on_fatal: Callable[[str], None] = lambda reason: None
        self.fatal_error: Optional[str] = None
        self.lanes: Optional[int] = None        # known once the first frame is compiled
        self._compile_lock = threading.Lock()   # lanes log and size from any thread
        self._compiled_sizes: set[tuple] = set()
        self._error: Optional[BaseException] = None
        self._threads: list[threading.Thread] = []
        self._started = False
        self._scheduler: FrameScheduler[Frame] = FrameScheduler(self.cameras)
        self._work: queue.Queue[Optional[Frame]] = queue.Queue()
        self._outbox = _Outbox()
        self._flight = threading.Condition()
        self._in_flight = 0
        self._take_lock = threading.Lock()

    @property
    def _limit(self) -> int:
        lanes = self.lanes or 1
        if self.policy is Policy.LIVE:
            return lanes + 1           # a frame per lane and one being finished
        return MAX_IN_FLIGHT if self.lanes is None else min(MAX_IN_FLIGHT, 2 * lanes)

    # --- intake (the caller's input thread) ---------------------------------------------

    def image(self, camera: CameraState, header: Any, stamp: int, msg: Any, compressed: bool,
              timestamp: int = 0) -> None:
        """Take an Image or CompressedImage message of ``camera``; ``timestamp``: bag time."""
        camera.stats.frame_received()
        p = camera.params()
        try:
            if compressed:
                check_compressed_header(msg, p.max_pixels)
                image = msg
            else:
                image = image_to_array(msg, p.max_pixels)
        except ImageDecodeError as exc:
            self.reject(camera, exc.kind, f"ignoring image: {exc}")
            self.progress(1)
            return
        verdict, back_s = camera.pipeline.check_stamp(stamp)
        if verdict is StampVerdict.BACKWARDS:
            self.reject(camera, REJECT_STAMP_BACKWARDS,
                        f"skipping image stamped {back_s:.3f} s before the previous one "
                        "(a second publisher on the topic, or reordered delivery)")
            self.progress(1)
            return
        if verdict is StampVerdict.RESTART:
            camera.stats.stamp_restart()
            self._reporter.problem(
                camera, "stamp_restart",
                f"image stamps jumped back by {back_s:.3f} s; taking it as the source "
                f"restarting (rosbag loop, simulator reset): more than {RESTART_AFTER_S} s "
                f"or {RESTART_AFTER_FRAMES} older frames in a row", Level.WARNING)
        camera.arrivals += 1
        camera.frame_id = header.frame_id
        frame = Frame(camera, header, stamp, image, camera.arrivals, timestamp)
        if self.policy is Policy.LIVE:
            if self._scheduler.put(camera, frame):
                camera.stats.frame_dropped()
            return
        self._admit_recorded(frame)

    def camera_info(self, camera: CameraState, msg: Any, stamp: int) -> None:
        """Keep a CameraInfo for the frames stamped ``stamp`` (the latest for the others)."""
        self._note(camera, camera.pipeline.add_calibration(camera_info_calibration(msg), stamp))
        held = camera.held
        if held is not None and held.stamp == stamp:
            self._release(held)

    def reference(self, camera: CameraState, kind: str, msg: Any, stamp: int, topic: str,
                  pose: Any = None) -> None:
        """Give the camera's alignment a metric reference: ``kind`` 'depth' or 'points'."""
        p = camera.params()
        try:
            if kind == "depth":
                note = camera.pipeline.alignment.add_depth(reference_depth(msg), stamp, p)
            else:
                note = camera.pipeline.alignment.add_points(cloud_points(msg), stamp, p, pose)
        except ReferenceDecodeError as exc:
            self.reject(camera, exc.kind, f"ignoring {topic}: {exc}")
            return
        self._note(camera, note)

    def reject(self, camera: CameraState, kind: str, text: str) -> None:
        """Count a refused message by reason and report it."""
        camera.stats.message_rejected(kind, text)
        self._reporter.problem(camera, kind, text, Level.REJECTION)

    def _note(self, camera: CameraState, note: Optional[Note]) -> None:
        if note is None:
            return
        if note.is_rejection:
            self.reject(camera, note.key, note.text)
        else:
            self._reporter.problem(camera, note.key, note.text, Level.WARNING)

    # --- live ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the first lane (and, live, the finisher); more lanes follow the first compile.

        A runner runs once: the node makes a new one at each activation.
        """
        if self._started:
            raise RuntimeError("a FrameRunner starts once")
        self._started = True
        self._spawn(self._lane, "depth_lane_0", (0,))
        if self.policy is Policy.LIVE:
            self._spawn(self._finish_all, "depth_finisher", ())

    def stop(self, join_s: Optional[float]) -> list[threading.Thread]:
        """Stop every thread, waiting at most ``join_s`` in all (None: until they end).

        Safe to call twice.

        A lane still inferring then finishes in the background (daemon threads) and its
        frame goes nowhere. Returns those threads: a process must not end under one (see
        the node's ``destroy_node``).
        """
        self._stop.set()
        self._scheduler.close()
        self._outbox.close(discard=True)
        for _ in self._threads:
            self._work.put(None)
        with self._flight:
            self._flight.notify_all()
        deadline = None if join_s is None else time.monotonic() + join_s
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        lingering = [thread for thread in self._threads if thread.is_alive()]
        self._threads = []
        return lingering

    # --- recorded -----------------------------------------------------------------------

    def run(self, read: Callable[[], None]) -> None:
        """Run ``read`` (which feeds the intake) on a thread and finish frames on this one.

        A sink may only work in the thread that opened it (SQLite's), so the finisher is
        the caller's thread. Returns when every frame read has been emitted, or at a
        stop; raises what broke the run.
        """
        self.start()
        reader = self._spawn(self._read_then_end, "depth_reader", (read,))
        try:
            self._finish_all()
        except BaseException as exc:   # a full disk, say: stop everything, report it
            self._error = self._error or exc
            self._stop.set()
        self._outbox.close(discard=True)   # unblocks a reader waiting for room
        reader.join()
        self.stop(join_s=None)
        if self._error is not None:
            raise self._error

    def pass_through(self, item: Any) -> None:
        """Queue ``item`` for the sink's ``pass_through``, in read order."""
        self._queue(_PassThrough(item))

    def advance(self, timestamp: int) -> None:
        """Note that recorded time reached ``timestamp``: frames held too long wait no more."""
        for camera in self.cameras:
            held = camera.held
            if held is not None and held.timestamp + PAIRING_WINDOW_NS < timestamp:
                self._release(held)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _read_then_end(self, read: Callable[[], None]) -> None:
        try:
            read()
        except BaseException as exc:   # reported by run() once every thread has stopped
            self._error = self._error or exc
            self._stop.set()
        finally:
            self._end_intake()

    def _end_intake(self) -> None:
        """Send held frames on (or cancel them at a stop) and tell lanes and finisher."""
        for camera in self.cameras:
            held = camera.held
            if held is None:
                continue
            if self._stop.is_set():
                camera.held = None
                held.cancelled = True
                self._outbox.finish(held)
            else:
                self._release(held)
        self._work.put(None)   # each lane puts it back for the next
        self._outbox.close()

    def _admit_recorded(self, frame: Frame) -> None:
        """Queue a frame for the finisher and hold it until its CameraInfo is known."""
        camera = frame.camera
        with self._flight:
            full = self._in_flight >= self._limit
        if full:
            self._release_held()
            with self._flight:
                while self._in_flight >= self._limit and not self._stop.is_set():
                    self._flight.wait(POLL_S)
        if self._stop.is_set():
            return
        with self._flight:
            self._in_flight += 1
        self._queue(frame)
        previous, camera.held = camera.held, frame
        if previous is not None:
            self._release(previous)
        match = camera.pipeline.calibrations.match(frame.stamp)
        if not camera.expects_camera_info or (match is not None and match.exact):
            self._release(frame)

    def _queue(self, item: Frame | _PassThrough) -> None:
        if self._outbox.full(MAX_QUEUED):
            self._release_held()   # the finisher may be waiting for a held frame
            self._outbox.wait_for_room(MAX_QUEUED, self._stop)
        if not self._stop.is_set():
            self._outbox.add(None, item)

    def _release_held(self) -> None:
        for camera in self.cameras:
            if camera.held is not None:
                self._release(camera.held)

    def _release(self, frame: Frame) -> None:
        """Fix the frame's calibration now and hand it to a lane.

        A frame without a CameraInfo of its own stamp gets the latest one; re-adding that
        one under the frame's stamp keeps it, whatever arrives before a lane runs the
        frame. (Unstamped frames have no stamp to pin to.)
        """
        camera = frame.camera
        if camera.held is frame:
            camera.held = None
        match = camera.pipeline.calibrations.match(frame.stamp)
        if match is not None and not match.exact and frame.stamp:
            camera.pipeline.add_calibration(match.calibration, frame.stamp)
        self._work.put(frame)

    # --- inference lanes ----------------------------------------------------------------

    def _spawn(self, target: Callable[..., None], name: str, args: tuple) -> threading.Thread:
        thread = threading.Thread(target=target, name=name, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()
        return thread

    def _lane(self, lane: int) -> None:
        take = self._take_live if self.policy is Policy.LIVE else self._take_recorded
        while True:
            frame = take()
            if frame is None:
                return
            if self.policy is Policy.RECORDED and self._stop.is_set():
                frame.cancelled = True
            else:
                self._infer(frame, lane)
            self._outbox.finish(frame)

    def _take_live(self) -> Optional[Frame]:
        """Take the next camera's newest frame and enter it in its camera's finishing order."""
        with self._take_lock:   # take and enter together: a camera's order is take order
            with self._flight:
                while self._in_flight >= self._limit and not self._stop.is_set():
                    self._flight.wait()
            taken = self._scheduler.take()
            if taken is None:
                return None
            camera, frame = taken
            with self._flight:
                self._in_flight += 1
            self._outbox.add(camera, frame)
            return frame

    def _take_recorded(self) -> Optional[Frame]:
        frame = self._work.get()
        if frame is None:
            self._work.put(None)   # for the next lane
        return frame

    def _infer(self, frame: Frame, lane: int) -> None:
        """Decode and run the network; the outcome stays on the frame for the finisher."""
        camera = frame.camera
        p = frame.params = camera.params()
        wanted = frame.wanted = self._sink.wanted(camera, p)
        if not wanted.anything:
            frame.image = None
            return
        try:
            image = frame.image
            if not isinstance(image, DecodedImage):
                image = compressed_to_array(image, p.max_pixels)
            started = time.perf_counter()
            frame.net = camera.pipeline.infer(image, frame.stamp, p, lane)
            frame.inference_s = time.perf_counter() - started
            self._compiled(camera, frame.net.image, p)
        except ImageDecodeError as exc:
            frame.rejection = exc
        except ModelLoadError as exc:
            with self._compile_lock:
                never_compiled = not self._compiled_sizes
            if never_compiled:
                self._fatal(exc)
            frame.error = exc
        except Exception as exc:  # counted as a failed frame by the finisher
            frame.error = exc
        frame.image = None

    def _compiled(self, camera: CameraState, image: DecodedImage, p: NodeParams) -> None:
        """Log, once per image size, how the model was compiled; size the lanes at the first."""
        height, width = image.pixels.shape[:2]
        key = (height, width, image.order, camera.pipeline.output_size(image.pixels.shape, p))
        with self._compile_lock:
            if key in self._compiled_sizes:
                return
            self._compiled_sizes.add(key)
            compiled = camera.pipeline.engine.compiled(*key)
            if self.lanes is None:
                self._size_lanes(int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
            precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
            streams = compiled.get_property("NUM_STREAMS")
            lanes = self.lanes
        self._reporter.info(f"compiled for {width}x{height} images: computing in {precision}, "
                            f"{streams} stream(s), {lanes} inference lane(s)")

    def _size_lanes(self, optimal: int) -> None:
        self.lanes = lane_count(self._workers, optimal)
        with self._flight:
            self._flight.notify_all()
        if self._stop.is_set():
            return
        for lane in range(1, self.lanes):
            self._spawn(self._lane, f"depth_lane_{lane}", (lane,))

    def _fatal(self, exc: ModelLoadError) -> None:
        """Stop like a start-up fault: the model cannot run on this device at all.

        The model is compiled for the camera's image size, so only the first frame shows
        whether the device can run it. Once a compile has succeeded, a failure for a new
        image size is per frame and the runner carries on.
        """
        self.fatal_error = str(exc)
        self._error = self._error or exc
        self._stop.set()
        self._scheduler.close()
        self._outbox.close(discard=True)
        self.on_fatal(str(exc))

    # --- finisher -----------------------------------------------------------------------

    def _finish_all(self) -> None:
        while True:
            item = self._outbox.take()
            if item is None:
                return
            if isinstance(item, _PassThrough):
                self._sink.pass_through(item.item)
                continue
            if item.cancelled:
                return
            try:
                self._finish(item)
            except Exception as exc:
                if self.policy is Policy.RECORDED:
                    raise   # the sink failed (a full disk): run() reports it
                if self._stop.is_set():
                    return  # publishers torn down under a stopping runner
                self._failed(item.camera, exc)
            finally:
                with self._flight:
                    self._in_flight -= 1
                    self._flight.notify_all()
                self.progress(1)

    def _finish(self, frame: Frame) -> None:
        camera = frame.camera
        if frame.rejection is not None:
            self.reject(camera, frame.rejection.kind, f"ignoring image: {frame.rejection}")
            return
        if frame.error is not None:
            if self.fatal_error is None:
                self._failed(camera, frame.error)
            return
        if frame.net is None:   # nothing was wanted
            camera.stats.frame_skipped()
            return
        if frame.sequence < camera.last_published:
            camera.stats.frame_dropped()   # a newer frame of this camera went out first
            return
        camera.last_published = frame.sequence
        out = camera.pipeline.finish(frame.net, frame.stamp, frame.params, frame.wanted)
        frame.net = None
        for note in out.notes:
            self._note(camera, note)
        self._sink.emit(camera, frame, out)
        end_to_end = None
        if self._clock_ns is not None and frame.stamp:
            end_to_end = (self._clock_ns() - frame.stamp) * 1e-9
        camera.stats.frame_published(frame.inference_s, end_to_end, out.calibration_source)

    def _failed(self, camera: CameraState, exc: Exception) -> None:
        camera.stats.frame_failed()
        self._reporter.problem(camera, "frame_failed",
                               f"frame skipped: {type(exc).__name__}: {exc}", Level.ERROR)
