"""FrameRunner without ROS: the live and recorded policies, the lane count, the sink.

Frames run through a real small IR. Which lane runs what, and when, is up to the threads;
where a test needs one order, ``GatedEngine`` forces it: it holds the frames the test
chose at the network call until the test lets them go, and tells when each frame enters
and leaves the network. Nothing is asserted about how long anything takes; the waits are
bounded only so that a broken runner fails instead of hanging.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional

import numpy as np
import pytest

from depth_anything_ros.inference.engine import DepthEngine, EngineConfig
from depth_anything_ros.pipeline.camera import CameraPipeline, FrameOutputs, Wanted
from depth_anything_ros.pipeline.camera_state import CameraState
from depth_anything_ros.pipeline.notes import REJECTION_KINDS
from depth_anything_ros.pipeline.outputs import OUTPUT_KEYS
from depth_anything_ros.pipeline.parameters import NodeParams
from depth_anything_ros.pipeline.runner import (Frame, FrameRunner, lane_count, Level,
                                                MAX_IN_FLIGHT, MAX_LANES, Policy)
from depth_anything_ros.pipeline.stats import ProcessingStats
from recorded_bags import header, pinhole_k, TYPES
from scenes import noise_scene

HEIGHT, WIDTH = 60, 80
BASE = noise_scene(3, HEIGHT, WIDTH)
# Bounds a wait for what must happen, so that a runner that never does it fails.
WAIT_S = 60.0
RTOL = 1e-5   # float32 sums in another order: a few ulps


def pixels(frame: int) -> np.ndarray:
    """Return frame ``frame``'s image: BASE with the frame's number in its first byte."""
    image = BASE.copy()
    image[0, 0, 0] = frame
    return image


def frame_number(image: np.ndarray) -> int:
    return int(image[0, 0, 0])


def image_msg(frame: int, frame_id: str = "optical") -> Any:
    """Return frame ``frame`` as a sensor_msgs/Image (rosbags' type: no ROS here)."""
    return TYPES["sensor_msgs/msg/Image"](
        header=header(frame * 1_000_000, frame_id), height=HEIGHT, width=WIDTH,
        encoding="bgr8", is_bigendian=False, step=WIDTH * 3,
        data=pixels(frame).reshape(-1))


def camera_info_msg(frame: int, k: tuple[float, ...]) -> Any:
    roi = TYPES["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0,
                                                    do_rectify=False)
    return TYPES["sensor_msgs/msg/CameraInfo"](
        header=header(frame * 1_000_000, "optical"), height=HEIGHT, width=WIDTH,
        distortion_model="plumb_bob", d=np.zeros(5), k=np.array(k), r=np.eye(3).reshape(-1),
        p=np.zeros(12), binning_x=0, binning_y=0, roi=roi)


class GatedEngine:
    """A DepthEngine whose network call holds chosen frames until the test releases them."""

    def __init__(self, engine: DepthEngine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._gates: dict[int, threading.Event] = {}
        self._entered: dict[int, threading.Event] = {}
        self._left: dict[int, threading.Event] = {}
        self.lanes_used: set[int] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def _event(self, events: dict[int, threading.Event], frame: int) -> threading.Event:
        with self._lock:
            return events.setdefault(frame, threading.Event())

    def hold(self, *frames: int) -> None:
        for frame in frames:
            self._event(self._gates, frame)

    def release(self, frame: int) -> None:
        self._event(self._gates, frame).set()

    def release_all(self) -> None:
        with self._lock:
            gates = list(self._gates.values())
        for gate in gates:
            gate.set()

    def wait_entered(self, frame: int) -> None:
        assert self._event(self._entered, frame).wait(WAIT_S), f"frame {frame} never ran"

    def wait_left(self, frame: int) -> None:
        assert self._event(self._left, frame).wait(WAIT_S), f"frame {frame} never finished"

    def infer_all(self, image: np.ndarray, order: str = "bgr",
                  output_size: Optional[tuple[int, int]] = None,
                  lane: int = 0) -> dict[str, np.ndarray]:
        """Run the network as ``CameraPipeline.infer`` does, once the frame may go."""
        frame = frame_number(image)
        with self._lock:
            self.lanes_used.add(lane)
            gate = self._gates.get(frame)
        self._event(self._entered, frame).set()
        if gate is not None and not gate.wait(WAIT_S):
            raise TimeoutError(f"frame {frame} was never released")
        try:
            return self._engine.infer_all(image, order, output_size, lane)
        finally:
            self._event(self._left, frame).set()


class RecordingSink:
    """Keeps what the runner hands over, in order: (camera, frame number) or a passed item."""

    def __init__(self, wanted: Wanted = Wanted()) -> None:
        self._wanted = wanted
        self._cond = threading.Condition()
        self.order: list[Any] = []
        self.outputs: dict[tuple[str, int], tuple[Any, FrameOutputs, np.ndarray]] = {}

    def wanted(self, camera: CameraState, p: NodeParams) -> Wanted:
        return self._wanted

    def emit(self, camera: CameraState, frame: Frame, out: FrameOutputs) -> None:
        key = (camera.name, frame.stamp // 1_000_000)
        with self._cond:
            # The pipeline reuses its buffers for the next frame: keep a copy of the depth.
            self.outputs[key] = (frame.header, out, out.depth.copy())
            self.order.append(key)
            self._cond.notify_all()

    def pass_through(self, item: Any) -> None:
        with self._cond:
            self.order.append(item)

    def frames(self, camera: str) -> list[int]:
        with self._cond:
            return [item[1] for item in self.order
                    if isinstance(item, tuple) and item[0] == camera]

    def emitted(self) -> int:
        with self._cond:
            return len(self.outputs)

    def wait_for(self, done: Callable[[], bool]) -> None:
        with self._cond:
            assert self._cond.wait_for(done, WAIT_S), self.order


class RecordingReporter:

    def __init__(self) -> None:
        self.infos: list[str] = []
        self.problems: list[tuple[str, str, Level]] = []

    def info(self, text: str) -> None:
        self.infos.append(text)

    def problem(self, camera: CameraState, key: str, text: str, level: Level) -> None:
        self.problems.append((camera.name, key, level))


def make_camera(name: str, engine: Any, expects_camera_info: bool = False) -> CameraState:
    p = NodeParams()
    return CameraState(name, CameraPipeline(engine), ProcessingStats(
        rejection_kinds=REJECTION_KINDS), lambda: p, expects_camera_info)


def feed(runner: FrameRunner, camera: CameraState, frame: int) -> None:
    """Hand the runner frame ``frame`` of ``camera`` as its intake would."""
    msg = image_msg(frame)
    runner.image(camera, msg.header, frame * 1_000_000, msg, False, timestamp=frame)


@pytest.fixture
def live():
    """Return ``start(cameras, sink, workers)``: a started LIVE runner, stopped after the test."""
    runners: list[FrameRunner] = []

    def start(cameras: list[CameraState], sink: RecordingSink, workers: int,
              reporter: Optional[RecordingReporter] = None) -> FrameRunner:
        runner = FrameRunner(cameras, sink, reporter or RecordingReporter(), Policy.LIVE,
                             workers=workers)
        runners.append(runner)
        runner.start()
        return runner

    yield start
    for runner in runners:
        runner.stop(join_s=WAIT_S)


@pytest.fixture
def gated(live):
    """Return a maker of GatedEngines around the engines it is given.

    Their frames are all released when the test ends, before ``live`` stops the runners, so
    a failed test leaves no lane waiting at a gate.
    """
    engines: list[GatedEngine] = []

    def make(engine: DepthEngine) -> GatedEngine:
        engines.append(GatedEngine(engine))
        return engines[-1]

    yield make
    for engine in engines:
        engine.release_all()


@pytest.fixture(scope="module")
def throughput_engine(small_metric_ir) -> DepthEngine:
    """f32 under the THROUGHPUT hint: the compiled model asks for as many requests as streams."""
    return DepthEngine(EngineConfig(str(small_metric_ir), performance_hint="THROUGHPUT",
                                    inference_precision="f32", cache_dir="none"))


# --- lanes ------------------------------------------------------------------------------

def test_lane_count_is_the_workers_asked_for_else_the_models_optimal_request_count():
    assert lane_count(3, 7) == 3
    assert lane_count(1, 7) == 1
    assert lane_count(0, 7) == 7
    assert lane_count(0, 0) == 1              # a device that names no figure still runs
    assert lane_count(0, 40) == MAX_LANES     # capped at the parameter's maximum


def test_zero_workers_run_as_many_lanes_as_the_compiled_model_asks_for(live, gated,
                                                                       throughput_engine):
    optimal = int(throughput_engine.compiled(HEIGHT, WIDTH, "bgr", (HEIGHT, WIDTH))
                  .get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    engine = gated(throughput_engine)
    camera = make_camera("", engine)
    sink, reporter = RecordingSink(), RecordingReporter()
    runner = live([camera], sink, 0, reporter)
    feed(runner, camera, 1)   # the first frame compiles the model, which sizes the lanes
    sink.wait_for(lambda: sink.emitted() == 1)
    assert runner.lanes == lane_count(0, optimal)
    assert f"{runner.lanes} inference lane(s)" in reporter.infos[0]
    # Each frame is taken by a free lane and held there: all lanes hold one at once.
    frames = range(2, 2 + runner.lanes)
    engine.hold(*frames)
    for frame in frames:
        feed(runner, camera, frame)
        engine.wait_entered(frame)
    assert engine.lanes_used == set(range(runner.lanes))
    for frame in frames:
        engine.release(frame)
    sink.wait_for(lambda: sink.emitted() == 1 + runner.lanes)
    assert sink.frames("") == [1, *frames]


def test_workers_set_the_lane_count_whatever_the_model_asks_for(live, throughput_engine):
    camera = make_camera("", throughput_engine)
    sink = RecordingSink()
    runner = live([camera], sink, 3)
    feed(runner, camera, 1)
    sink.wait_for(lambda: sink.emitted() == 1)
    assert runner.lanes == 3


# --- live -------------------------------------------------------------------------------

def test_live_the_newest_frame_wins_and_overwritten_frames_count_as_dropped(
        live, gated, small_metric_ir, reference_engine):
    engine = gated(reference_engine(small_metric_ir))
    camera = make_camera("", engine)
    sink = RecordingSink()
    runner = live([camera], sink, 1)
    engine.hold(1)
    feed(runner, camera, 1)
    engine.wait_entered(1)
    for frame in (2, 3, 4):   # the only lane is busy: each replaces the one before
        feed(runner, camera, frame)
    engine.release(1)
    sink.wait_for(lambda: sink.emitted() == 2)
    assert sink.frames("") == [1, 4]
    snap = camera.stats.snapshot()
    assert (snap.received_total, snap.published_total, snap.dropped_total) == (4, 2, 2)


def test_live_cameras_finish_in_order_and_a_held_frame_holds_back_only_its_own_camera(
        live, gated, small_metric_ir, reference_engine):
    engine = gated(reference_engine(small_metric_ir))
    front, rear = make_camera("front", engine), make_camera("rear", engine)
    sink = RecordingSink()
    runner = live([front, rear], sink, 2)
    feed(runner, front, 1)
    sink.wait_for(lambda: sink.emitted() == 1)   # compiled: both lanes run from now on
    engine.hold(2)
    feed(runner, front, 2)
    engine.wait_entered(2)
    feed(runner, front, 3)        # taken by the other lane, and done before frame 2
    engine.wait_left(3)
    feed(runner, rear, 10)
    sink.wait_for(lambda: sink.frames("rear") == [10])   # while front's frame 2 is held
    assert sink.frames("front") == [1]
    engine.release(2)
    sink.wait_for(lambda: sink.emitted() == 4)
    assert sink.frames("front") == [1, 2, 3]      # in the order lanes took them
    assert engine.lanes_used == {0, 1}
    for camera, count in ((front, 3), (rear, 1)):
        snap = camera.stats.snapshot()
        assert (snap.received_total, snap.published_total, snap.dropped_total) == (count, count, 0)


# --- recorded ---------------------------------------------------------------------------

def _capture(failure: list[BaseException], call: Callable[..., None], *args: Any) -> None:
    try:
        call(*args)
    except BaseException as exc:   # the test fails with it
        failure.append(exc)


def test_recorded_runs_every_frame_in_read_order_with_bounded_read_ahead(
        gated, small_metric_ir, reference_engine):
    frames = 16
    engine = gated(reference_engine(small_metric_ir))
    camera = make_camera("", engine)
    sink = RecordingSink()
    runner = FrameRunner([camera], sink, RecordingReporter(), Policy.RECORDED, workers=2)
    admitted: list[tuple[int, int]] = []   # (frame, frames emitted) when intake took it
    first_full = threading.Event()

    def read() -> None:
        for frame in range(1, frames + 1):
            feed(runner, camera, frame)
            admitted.append((frame, sink.emitted()))
            if frame == MAX_IN_FLIGHT:
                first_full.set()

    engine.hold(1, 5)
    failure: list[BaseException] = []
    run = threading.Thread(target=lambda: _capture(failure, runner.run, read))
    run.start()
    try:
        # Frame 1 is held in the network: the reader takes MAX_IN_FLIGHT frames, no more.
        assert first_full.wait(WAIT_S), admitted
        assert len(admitted) == MAX_IN_FLIGHT
        engine.release(1)
        # Frame 6 runs on the other lane and is done before frame 5, which is held.
        engine.wait_left(6)
        engine.release(5)
    finally:
        engine.release_all()
        run.join(WAIT_S)
    assert not run.is_alive() and not failure, failure
    assert sink.frames("") == list(range(1, frames + 1))
    assert runner.lanes == 2
    # Once the lanes are known, at most two frames per lane are read and not yet written.
    for frame, emitted in admitted[MAX_IN_FLIGHT:]:
        assert frame - emitted <= 2 * runner.lanes, admitted
    snap = camera.stats.snapshot()
    assert (snap.received_total, snap.published_total, snap.dropped_total) == (frames, frames, 0)


# --- the sink -----------------------------------------------------------------------------

def test_the_sink_gets_each_frames_wanted_outputs_header_and_calibration(small_metric_ir,
                                                                         reference_engine):
    engine = reference_engine(small_metric_ir)
    camera = make_camera("front", engine, expects_camera_info=True)
    sink, reporter = RecordingSink(Wanted(points=False, relative=False)), RecordingReporter()
    runner = FrameRunner([camera], sink, reporter, Policy.RECORDED, workers=1)
    k = pinhole_k(WIDTH, HEIGHT)
    held = []

    def read() -> None:
        for frame in (1, 2, 3):
            msg = image_msg(frame, frame_id="front_optical")
            runner.image(camera, msg.header, frame * 1_000_000, msg, False, timestamp=frame)
            runner.pass_through(f"after {frame}")
            # Its CameraInfo is recorded after it: the frame waits for that one.
            held.append(camera.held and camera.held.stamp)
            runner.camera_info(camera, camera_info_msg(frame, k), frame * 1_000_000)

    runner.run(read)
    assert held == [1_000_000, 2_000_000, 3_000_000]
    assert sink.order == [("front", 1), "after 1", ("front", 2), "after 2", ("front", 3),
                          "after 3"]
    for frame in (1, 2, 3):
        msg_header, out, depth = sink.outputs[("front", frame)]
        assert msg_header.frame_id == "front_optical"
        assert msg_header.stamp.nanosec == frame * 1_000_000
        np.testing.assert_allclose(depth, engine.infer(pixels(frame)), rtol=RTOL)
        assert out.colorized.shape == (HEIGHT, WIDTH, 3)
        assert out.points is None and out.relative is None
        assert out.calibration_source == "camera_info"
        assert (out.intrinsics.fx, out.intrinsics.cx) == (k[0], k[2])
    assert reporter.problems == []   # no frame ran before its CameraInfo (the fallback's note)


def test_a_frame_nothing_is_wanted_for_is_skipped_not_inferred(gated, small_metric_ir,
                                                               reference_engine):
    engine = gated(reference_engine(small_metric_ir))
    camera = make_camera("", engine)
    nothing = Wanted(**dict.fromkeys(OUTPUT_KEYS, False))
    runner = FrameRunner([camera], RecordingSink(nothing), RecordingReporter(),
                         Policy.RECORDED, workers=1)
    runner.run(lambda: feed(runner, camera, 1))
    snap = camera.stats.snapshot()
    assert (snap.received_total, snap.skipped_total, snap.published_total) == (1, 1, 0)
    assert engine.lanes_used == set()
