"""``depth_anything_node``: camera images in, metric depth, colorized depth and clouds out.

A managed (lifecycle) node and a thin one: every per-frame computation is the ROS-free
``CameraPipeline``'s; this module only subscribes, publishes, runs threads, counts and
logs. Lifecycle, the Nav2 way: configure validates and loads the IR and creates the
publishers (a failure is logged in one line, returns FAILURE and leaves the node
unconfigured); activate starts the workers and the input; deactivate stops both, and
nothing is published after it; cleanup frees the engine. With ``autostart`` (default)
the node drives itself to active at start-up, and a fault there ends the process with
exit code 1 and one ``error:`` line.

Input is lazy, as depth_image_proc's: the image and camera_info subscriptions exist only
while an image or cloud output has a subscriber, so an unwatched camera costs nothing.
Callbacks only hand messages over: the image callback drops the newest frame into a
FrameSlot and inference threads work on whatever is newest when they are free, so the
executor stays free for parameters, lifecycle and diagnostics however slow the model
is, and latency never grows behind a queue (overwritten frames count as dropped).
A publisher thread finishes and publishes one frame while the next is inferred
(OpenVINO releases the GIL), so the output rate is set by inference alone.

Bad input never stops the node: each refused message is counted by reason in
/diagnostics and logged at most once per reason every few seconds.
"""

from __future__ import annotations

import os
import re
import threading
import time
from typing import Any, NamedTuple, Optional, Union

import cv2
from diagnostic_msgs.msg import DiagnosticArray
import rclpy
from rclpy.event_handler import PublisherEventCallbacks
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header

from depth_anything_ros.inference.engine import DepthEngine, EngineConfig, ModelLoadError
from depth_anything_ros.pipeline.camera import (CameraPipeline, NetworkOutput, Note,
                                                REJECT_STAMP_BACKWARDS, REJECTION_KINDS, Wanted)
from depth_anything_ros.pipeline.frame_slot import FrameSlot
from depth_anything_ros.pipeline.image_input import (check_compressed_header, compressed_to_array,
                                                     DecodedImage, image_to_array, ImageDecodeError)
from depth_anything_ros.pipeline.parameters import NodeParams, ParameterError
from depth_anything_ros.pipeline.stamp_order import (RESTART_AFTER_FRAMES, RESTART_AFTER_S,
                                                     StampVerdict)
from depth_anything_ros.pipeline.stats import KeyedRateLimit, ProcessingStats
from depth_anything_ros.ros.cloud_msg import CloudBuilder
from depth_anything_ros.ros.codec import (array_to_image, camera_info_to_calibration,
                                          intrinsics_to_camera_info, stamp_ns)
from depth_anything_ros.ros.dds_profile import apply_default_profile
from depth_anything_ros.ros.diagnostics import diagnostic_array, status_from_snapshot
from depth_anything_ros.ros.parameters import effective_model_path, ParameterStore
from depth_anything_ros.ros.qos import OVERRIDABLE, qos_profile

NODE_NAME = "depth_anything"
# Topic names relative to the node's namespace; the launch file remaps the inputs.
TOPIC_IMAGE = "image"
TOPIC_COMPRESSED = "image/compressed"
TOPIC_CAMERA_INFO = "camera_info"
TOPIC_DEPTH = "depth/image"
TOPIC_DEPTH_INFO = "depth/camera_info"
TOPIC_COLORIZED = "depth/colorized"
TOPIC_POINTS = "depth/points"
TOPIC_RELATIVE = "depth/relative"
TOPIC_DIAGNOSTICS = "/diagnostics"

WARN_THROTTLE_S = 5.0
# Bound on joining all worker threads at deactivate and shutdown; an inference call
# already running finishes in the background (daemon threads) rather than holding up
# Ctrl-C, and its outputs go nowhere (lifecycle publishers are disabled by then).
WORKER_JOIN_S = 1.5
SUCCESS = TransitionCallbackReturn.SUCCESS
FAILURE = TransitionCallbackReturn.FAILURE


def _has_stamp(header: Header) -> bool:
    return header.stamp.sec != 0 or header.stamp.nanosec != 0


class _Frame(NamedTuple):
    header: Header
    image: Union[DecodedImage, CompressedImage]  # compressed data is decoded by the worker
    sequence: int  # arrival order; stamps may restart (rosbag loop), this never does


class _Inferred(NamedTuple):
    """What an inference thread hands to the publisher thread."""

    sequence: int
    header: Header
    net: NetworkOutput        # the network's output and the (possibly rectified) image
    inference_s: float
    params: NodeParams        # the frame is finished with the parameters it started with
    wanted: Wanted


class _Outputs(NamedTuple):
    depth: Any
    info: Any
    colorized: Any
    points: Any
    relative: Any             # None for metric models

    def watched(self) -> bool:
        """Whether an image or cloud output has a subscriber: what opens the input."""
        return any(pub is not None and pub.get_subscription_count() > 0
                   for pub in (self.depth, self.colorized, self.points, self.relative))


class DepthNode(LifecycleNode):
    """Raises ParameterError when its parameters cannot be declared; ``main`` reports it."""

    def __init__(self, **node_kwargs) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        self._pipeline: Optional[CameraPipeline] = None   # set while configured
        self._outputs: Optional[_Outputs] = None
        self._inputs: list = []                           # subscriptions while watched
        self._threads: list[threading.Thread] = []
        self._slot: FrameSlot[_Frame] = FrameSlot()
        self._inferred: FrameSlot[_Inferred] = FrameSlot()
        self._active = False
        self._arrivals = 0            # executor thread only
        self._last_published = -1     # publisher thread only
        self._compiled_once = False
        self._timer = self._pub_diagnostics = None
        self._cloud_builder = CloudBuilder()
        self._stats = ProcessingStats(rejection_kinds=REJECTION_KINDS)
        self._log_limit = KeyedRateLimit(WARN_THROTTLE_S)
        # Set by a worker when the model cannot run at all; ``main`` exits 1 with it.
        self.fatal_error: Optional[str] = None
        # The reason of the last failed configure, as logged.
        self.configure_error: Optional[str] = None
        try:
            self._params = ParameterStore(self, on_change=self._params_changed,
                                          reload_allowed=lambda: self._pipeline is None)
        except BaseException:
            self.destroy_node()
            raise
        if self._params.unknown:
            self.get_logger().warning(
                f"ignoring unknown parameter(s) {', '.join(self._params.unknown)}: this node "
                "has no such parameter (see config/depth.yaml for the names)")

    @property
    def autostart(self) -> bool:
        return self._params.current.autostart

    # --- lifecycle transitions (executor thread) -------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        p = self._params.current
        try:
            engine = DepthEngine(EngineConfig(
                model_path=effective_model_path(p.model_path), device=p.device,
                performance_hint=p.performance_hint, inference_precision=p.inference_precision,
                cache_dir=p.cache_dir, num_streams=p.num_streams, num_threads=p.num_threads,
                allow_cpu_fallback=p.allow_cpu_fallback))
        except (ParameterError, ModelLoadError) as exc:
            self.configure_error = str(exc)
            self.get_logger().error(f"error: {exc}")
            return FAILURE
        self.configure_error = None
        self._pipeline = CameraPipeline(engine)
        self._compiled_once = False
        events = PublisherEventCallbacks(matched=lambda _info: self._update_inputs())
        out_qos = qos_profile(p.output_qos)

        def output(msg_type: type, topic: str) -> Any:
            return self.create_lifecycle_publisher(msg_type, topic, out_qos,
                                                   event_callbacks=events,
                                                   qos_overriding_options=OVERRIDABLE)

        self._outputs = _Outputs(
            depth=output(Image, TOPIC_DEPTH), info=output(CameraInfo, TOPIC_DEPTH_INFO),
            colorized=output(Image, TOPIC_COLORIZED), points=output(PointCloud2, TOPIC_POINTS),
            relative=None if engine.metadata.is_metric else output(Image, TOPIC_RELATIVE))
        self._pub_diagnostics = self.create_publisher(DiagnosticArray, TOPIC_DIAGNOSTICS, 10)
        self._timer = self.create_timer(p.diagnostics_period, self._tick)
        self._log_configured(engine, p)
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        p = self._params.current
        self._slot, self._inferred = FrameSlot(), FrameSlot()
        workers = [(self._run_inference, f"depth_inference_{lane}", (lane,))
                   for lane in range(p.inference_workers)]
        for target, name, args in workers + [(self._run_publisher, "depth_publish", ())]:
            thread = threading.Thread(target=target, name=name, args=args, daemon=True)
            thread.start()
            self._threads.append(thread)
        result = super().on_activate(state)
        self._active = True
        self._update_inputs()
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_deactivate(state)  # publishers off first: nothing more goes out
        self._active = False
        self._update_inputs()
        self._stop_workers()
        return result

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_cleanup(state)
        self._release()
        return result

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        self._update_inputs()
        self._stop_workers()
        self._release()
        return SUCCESS

    def _release(self) -> None:
        """Undo configure: publishers, timer and the engine.

        This drops the last reference to the engine, unless a worker that outlived its join
        still holds one.
        """
        if self._outputs is not None:
            for pub in self._outputs:
                if pub is not None:
                    self.destroy_lifecycle_publisher(pub)
            self._outputs = None
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self.destroy_publisher(self._pub_diagnostics)
            self._timer = self._pub_diagnostics = None
        self._pipeline = None

    def _log_configured(self, engine: DepthEngine, p: NodeParams) -> None:
        meta = engine.metadata
        net_h, net_w = engine.network_size
        if engine.device_name != p.device:
            self.get_logger().warning(
                f"device '{p.device}' is not available (OpenVINO sees "
                f"{', '.join(engine.core.available_devices)}); running on "
                f"{engine.device_name} because allow_cpu_fallback is true")
        image_topic = TOPIC_COMPRESSED if p.input_transport == "compressed" else TOPIC_IMAGE
        self.get_logger().info(
            f"{meta.encoder} {meta.depth_type} model {engine.model_path.name} "
            f"({engine.model_choice}), network {net_h}x{net_w}, on {engine.device_name}; "
            f"input {self.resolve_topic_name(image_topic)} + "
            f"{self.resolve_topic_name(TOPIC_CAMERA_INFO)}")
        if not meta.is_metric:
            self.get_logger().info(
                "relative model: outputs are inverse depth, not metres; publishing "
                f"{TOPIC_RELATIVE} and {TOPIC_COLORIZED}. Set relative_scale > 0 to also publish "
                f"{TOPIC_DEPTH} and {TOPIC_POINTS}.")

    # --- executor thread -------------------------------------------------------------

    def _update_inputs(self) -> None:
        """Subscribe to the camera while active and watched, unsubscribe otherwise.

        Called on every publisher match change and each diagnostics tick (a missed
        event then costs at most one period).
        """
        watched = self._active and self._outputs is not None and self._outputs.watched()
        if watched and not self._inputs:
            p = self._params.current
            # A few CameraInfo may arrive between two images; keep them for stamp matching.
            # Created before the image subscription: the executor serves ready
            # subscriptions in creation order, so an image and its CameraInfo arriving
            # together are paired.
            info_qos = qos_profile(p.input_qos, max(5, p.input_queue_depth))
            in_qos = qos_profile(p.input_qos, p.input_queue_depth)
            self._inputs.append(self.create_subscription(
                CameraInfo, TOPIC_CAMERA_INFO, self._store_camera_info, info_qos,
                qos_overriding_options=OVERRIDABLE))
            if p.input_transport == "compressed":
                self._inputs.append(self.create_subscription(
                    CompressedImage, TOPIC_COMPRESSED, self._slot_compressed, in_qos,
                    qos_overriding_options=OVERRIDABLE))
            else:
                self._inputs.append(self.create_subscription(
                    Image, TOPIC_IMAGE, self._slot_image, in_qos,
                    qos_overriding_options=OVERRIDABLE))
        elif not watched and self._inputs:
            for sub in self._inputs:
                self.destroy_subscription(sub)
            self._inputs = []

    def _slot_image(self, msg: Image) -> None:
        """Raw images are checked here.

        Decoding is only a view into the message, and a bad image is then counted even when
        a newer frame would have replaced it.
        """
        self._stats.frame_received()
        try:
            image = image_to_array(msg, self._params.current.max_pixels)
        except ImageDecodeError as exc:
            self._reject(exc.kind, f"ignoring image: {exc}")
            return
        self._offer(msg.header, image)

    def _slot_compressed(self, msg: CompressedImage) -> None:
        """Compressed images are decoded by the worker, that being real work.

        What the header gives away (an oversized image) is refused here, before queueing.
        """
        self._stats.frame_received()
        try:
            check_compressed_header(msg, self._params.current.max_pixels)
        except ImageDecodeError as exc:
            self._reject(exc.kind, f"ignoring image: {exc}")
            return
        self._offer(msg.header, msg)

    def _offer(self, header: Header, image: Union[DecodedImage, CompressedImage]) -> None:
        """Hand a well-formed frame to the workers unless its stamp goes backwards."""
        pipeline = self._pipeline
        if pipeline is None:
            return
        verdict, back_s = pipeline.check_stamp(stamp_ns(header.stamp))
        if verdict is StampVerdict.BACKWARDS:
            self._reject(REJECT_STAMP_BACKWARDS,
                         f"skipping image stamped {back_s:.3f} s before the previous one "
                         "(a second publisher on the topic, or reordered delivery)")
            return
        if verdict is StampVerdict.RESTART:
            self._stats.stamp_restart()
            if self._log_limit.allow("stamp_restart") is not None:
                self.get_logger().warning(
                    f"image stamps jumped back by {back_s:.3f} s; taking it as the source "
                    f"restarting (rosbag loop, simulator reset): more than {RESTART_AFTER_S} s "
                    f"or {RESTART_AFTER_FRAMES} older frames in a row")
        self._arrivals += 1
        if self._slot.put(_Frame(header, image, self._arrivals)):
            self._stats.frame_dropped()

    def _store_camera_info(self, msg: CameraInfo) -> None:
        pipeline = self._pipeline
        if pipeline is not None:
            self._note(pipeline.add_calibration(camera_info_to_calibration(msg),
                                                stamp_ns(msg.header.stamp)))

    def _note(self, note: Optional[Note]) -> None:
        if note is None:
            return
        if note.is_rejection:
            self._reject(note.key, note.text)
        elif self._log_limit.allow(note.key) is not None:
            self.get_logger().warning(note.text)

    def _reject(self, kind: str, text: str) -> None:
        """Count a refused message by reason.

        Log it unless this reason was logged within the last WARN_THROTTLE_S (the line then
        says how many were not).
        """
        self._stats.message_rejected(kind, text)
        held = self._log_limit.allow(kind)
        if held is not None:
            more = f" [{held} more {kind} rejection(s) not logged]" if held else ""
            self.get_logger().warning(text + more)

    def _params_changed(self, old: NodeParams, new: NodeParams) -> None:
        pipeline = self._pipeline
        if (pipeline is not None and not pipeline.metric_model
                and (old.relative_scale > 0) != (new.relative_scale > 0)):
            state = "now" if new.relative_scale > 0 else "no longer"
            self.get_logger().info(f"relative_scale={new.relative_scale}: {state} publishing "
                                   f"{TOPIC_DEPTH} and {TOPIC_POINTS}")

    def _tick(self) -> None:
        self._update_inputs()
        pipeline = self._pipeline
        if pipeline is None:
            return
        engine = pipeline.engine
        net_h, net_w = engine.network_size
        status = status_from_snapshot(
            self._stats.snapshot(),
            name=f"{self.get_fully_qualified_name().lstrip('/')}: depth estimation",
            hardware_id=engine.device_name,
            extra={"model type": "metric" if pipeline.metric_model else "relative",
                   "network size": f"{net_h}x{net_w}",
                   "calibration": pipeline.calibration_source,
                   "lifecycle": "active" if self._active else "inactive"})
        self._pub_diagnostics.publish(diagnostic_array([status], self.get_clock().now().to_msg()))

    # --- inference threads -----------------------------------------------------------

    def _run_inference(self, lane: int) -> None:
        slot, inferred_slot, pipeline = self._slot, self._inferred, self._pipeline
        while True:
            frame = slot.take()
            if frame is None:
                return
            try:
                inferred = self._infer(pipeline, frame, self._params.current, lane)
            except ModelLoadError as exc:
                if not self._compiled_once:
                    self._stop_fatally(str(exc))
                    return
                self._frame_failed(exc)
                continue
            except Exception as exc:  # keep serving frames; a shutdown race ends the loop
                if slot.closed or not self.context.ok():
                    return
                self._frame_failed(exc)
                continue
            if inferred is not None and not inferred_slot.put_when_free(inferred):
                return

    def _infer(self, pipeline: CameraPipeline, frame: _Frame, p: NodeParams,
               lane: int) -> Optional[_Inferred]:
        """Decode and run the network; None when the frame needs no output."""
        wanted = self._wanted(pipeline, p)
        if not wanted.anything:
            self._stats.frame_skipped()
            return None
        image = frame.image
        if isinstance(image, CompressedImage):
            try:
                image = compressed_to_array(image, p.max_pixels)
            except ImageDecodeError as exc:
                self._reject(exc.kind, f"ignoring image: {exc}")
                return None
        started = time.perf_counter()
        net = pipeline.infer(image, stamp_ns(frame.header.stamp), p, lane)
        inference_s = time.perf_counter() - started
        if not self._compiled_once:
            self._compiled_once = True
            self._log_compiled(pipeline, net.image, p)
        return _Inferred(frame.sequence, frame.header, net, inference_s, p, wanted)

    def _wanted(self, pipeline: CameraPipeline, p: NodeParams) -> Wanted:
        outputs = self._outputs
        if outputs is None:
            return Wanted(False, False, False, False)
        metres = pipeline.has_metres(p)
        return Wanted(
            depth=metres and outputs.depth.get_subscription_count() > 0,
            points=metres and outputs.points.get_subscription_count() > 0,
            colorized=outputs.colorized.get_subscription_count() > 0,
            relative=(outputs.relative is not None
                      and outputs.relative.get_subscription_count() > 0))

    def _log_compiled(self, pipeline: CameraPipeline, image: DecodedImage,
                      p: NodeParams) -> None:
        height, width = image.pixels.shape[:2]
        compiled = pipeline.engine.compiled(height, width, image.order,
                                            pipeline.output_size(image.pixels.shape, p))
        precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        streams = compiled.get_property("NUM_STREAMS")
        self.get_logger().info(
            f"compiled for {width}x{height} images: computing in {precision}, {streams} "
            f"stream(s), {p.inference_workers} inference worker(s)", once=True)

    def _frame_failed(self, exc: Exception) -> None:
        self._stats.frame_failed()
        if self._log_limit.allow("frame_failed") is not None:
            self.get_logger().error(f"frame skipped: {type(exc).__name__}: {exc}")

    def _stop_fatally(self, reason: str) -> None:
        """Stop like a start-up fault would.

        The model is compiled for the camera's image size, so only the first frame shows
        whether the device can run it at all. If no compile has ever succeeded the node
        cannot do anything useful. (Once one has, a failure for a new image size is per
        frame and the node carries on.)
        """
        self.fatal_error = reason
        self._slot.close()
        self._inferred.close()
        self.context.try_shutdown()

    # --- publisher thread ------------------------------------------------------------

    def _run_publisher(self) -> None:
        slot, pipeline, outputs = self._inferred, self._pipeline, self._outputs
        while True:
            inferred = slot.take()
            if inferred is None:
                return
            try:
                self._publish(pipeline, outputs, inferred)
            except Exception as exc:
                if slot.closed or not self.context.ok():
                    return
                self._frame_failed(exc)

    def _publish(self, pipeline: CameraPipeline, outputs: _Outputs, inferred: _Inferred) -> None:
        if inferred.sequence < self._last_published:
            # Several workers: a newer frame finished first. Publishing this one now
            # would send the outputs back in time.
            self._stats.frame_dropped()
            return
        self._last_published = inferred.sequence
        header = inferred.header
        out = pipeline.finish(inferred.net, stamp_ns(header.stamp), inferred.params,
                              inferred.wanted)
        for note in out.notes:
            self._note(note)
        if out.relative is not None:
            outputs.relative.publish(array_to_image(out.relative, "32FC1", header))
        if inferred.wanted.depth:
            outputs.depth.publish(array_to_image(out.depth, "32FC1", header))
        if outputs.info.get_subscription_count() > 0:
            outputs.info.publish(intrinsics_to_camera_info(out.intrinsics, header,
                                                           out.calibration))
        if out.colorized is not None:
            outputs.colorized.publish(array_to_image(out.colorized, "bgr8", header))
        if out.points is not None:
            outputs.points.publish(self._cloud_builder.build(out.points, header, out.colors))
        end_to_end = None
        if _has_stamp(header):
            end_to_end = (self.get_clock().now() - Time.from_msg(header.stamp)).nanoseconds * 1e-9
        self._stats.frame_published(inferred.inference_s, end_to_end)

    # --- teardown --------------------------------------------------------------------

    def _stop_workers(self) -> None:
        """Stop the inference and publisher threads; safe to call twice."""
        self._slot.close()
        self._inferred.close()
        deadline = time.monotonic() + WORKER_JOIN_S
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = []

    def destroy_node(self) -> None:
        self._stop_workers()
        super().destroy_node()


def _rcl_reason(exc: Exception) -> str:
    """Return an rcl error without the ', at /path/file.c:NN' source locations it carries."""
    text = re.sub(r",? at \S+\.c:\d+", "", str(exc)).strip()
    return text.removeprefix("failed to initialize rcl: ")


def _fatal(text: str) -> int:
    rclpy.logging.get_logger(NODE_NAME).error(f"error: {text}")
    return 1


def main(args: Optional[list[str]] = None) -> int:
    """Console entry point; returns the process exit code.

    The code is 1 when it could not start or the model cannot run on the device.
    """
    # The node reports undecodable images itself, rate-limited; OpenCV's decoders would
    # also print a line for every one of them (PNG header errors at ERROR level), which
    # would defeat the rate limit.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    dds_note = apply_default_profile(os.environ)
    try:
        rclpy.init(args=args)
    except _rclpy.UnknownROSArgsError as exc:
        return _fatal(f"unknown ROS arguments {exc}; see --ros-args --help")
    except _rclpy.RCLError as exc:
        return _fatal(
            f"cannot start: {_rcl_reason(exc)}. Check the --ros-args: --params-file takes an "
            "existing, valid YAML file (like config/depth.yaml), -p name:=value, -r from:=to")
    node: Optional[DepthNode] = None
    try:
        try:
            node = DepthNode()
        except ParameterError as exc:
            return _fatal(str(exc))
        if dds_note is not None:
            node.get_logger().info(dds_note)
        if node.autostart:
            if node.trigger_configure() != SUCCESS:
                return 1  # on_configure logged the one error line
            node.trigger_activate()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        try:
            executor.spin()
        except _rclpy.RCLError:
            # SIGINT/SIGTERM shut the context down from rclpy's signal handler; an executor
            # that wakes in that instant (a guard condition, a matched event) fails to
            # build its wait set on the dead context. That is the shutdown, not a fault.
            if rclpy.ok():
                raise
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    if node is not None and node.fatal_error is not None:
        return _fatal(node.fatal_error)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
