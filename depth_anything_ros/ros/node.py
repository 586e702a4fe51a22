"""``depth_anything_node``: camera images in, metric depth, colorized depth and clouds out.

A managed (lifecycle) node and a thin one: every per-frame computation is the ROS-free
``CameraPipeline``'s; this module only subscribes, publishes, runs threads, counts and
logs. Lifecycle, the Nav2 way: configure validates and loads the IR and creates the
publishers (a failure is logged in one line, returns FAILURE and leaves the node
unconfigured); activate starts the workers and the input; deactivate stops both, and
nothing is published after it; cleanup frees the engine. With ``autostart`` (default)
the node drives itself to active at start-up, and a fault there ends the process with
exit code 1 and one ``error:`` line.

One node serves one camera, or every camera the ``cameras`` parameter names, from one
model in memory: each camera has its own topics, pipeline state, counters and
/diagnostics status (``camera_io``), and the inference workers serve whichever camera
has waited longest (``FrameScheduler``), so no camera starves and a silent or faulty one
slows nobody.

Input is lazy, as depth_image_proc's: a camera's image and camera_info subscriptions
exist only while one of its image or cloud outputs has a subscriber, so an unwatched
camera costs nothing. Callbacks only hand messages over: the image callback leaves the
newest frame in the camera's slot and inference threads take frames when they are free,
so the executor stays free for parameters, lifecycle and diagnostics however slow the
model is, and latency never grows behind a queue (overwritten frames count as dropped).
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

from diagnostic_msgs.msg import DiagnosticArray
import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header

from depth_anything_ros.geometry.reference import REFERENCE_EXTRINSIC
from depth_anything_ros.inference.engine import DepthEngine, EngineConfig, ModelLoadError
from depth_anything_ros.pipeline.camera import CameraPipeline, NetworkOutput, Wanted
from depth_anything_ros.pipeline.frame_scheduler import FrameScheduler
from depth_anything_ros.pipeline.frame_slot import FrameSlot
from depth_anything_ros.pipeline.image_input import (check_compressed_header, compressed_to_array,
                                                     DecodedImage, image_to_array, ImageDecodeError,
                                                     silence_decoder_logs)
from depth_anything_ros.pipeline.notes import Note, REJECT_STAMP_BACKWARDS, REJECTION_KINDS
from depth_anything_ros.pipeline.parameters import NodeParams, ParameterError
from depth_anything_ros.pipeline.reference_input import (cloud_points, reference_depth,
                                                         ReferenceDecodeError)
from depth_anything_ros.pipeline.stamp_order import (RESTART_AFTER_FRAMES, RESTART_AFTER_S,
                                                     StampVerdict)
from depth_anything_ros.pipeline.stats import KeyedRateLimit, ProcessingStats
from depth_anything_ros.ros.camera_io import (CameraIO, Outputs, TOPIC_CAMERA_INFO,
                                              TOPIC_COLORIZED, TOPIC_COMPRESSED, TOPIC_DEPTH,
                                              TOPIC_DEPTH_INFO, TOPIC_IMAGE, TOPIC_POINTS,
                                              TOPIC_REFERENCE_DEPTH, TOPIC_REFERENCE_POINTS,
                                              TOPIC_RELATIVE)
from depth_anything_ros.ros.codec import (array_to_image, camera_info_to_calibration,
                                          intrinsics_to_camera_info, stamp_ns)
from depth_anything_ros.ros.compat import INPUT_POLL_S, publisher_events
from depth_anything_ros.ros.dds_profile import apply_default_profile
from depth_anything_ros.ros.diagnostics import diagnostic_array, status_from_snapshot
from depth_anything_ros.ros.parameters import effective_model_path, ParameterStore
from depth_anything_ros.ros.qos import OVERRIDABLE, qos_profile
from depth_anything_ros.ros.tf_pose import tf_poses, TfPoses

NODE_NAME = "depth_anything"
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

    camera: CameraIO
    sequence: int
    header: Header
    net: NetworkOutput        # the network's output and the (possibly rectified) image
    inference_s: float
    params: NodeParams        # the frame is finished with the parameters it started with
    wanted: Wanted


class DepthNode(LifecycleNode):
    """Raises ParameterError when its parameters cannot be declared; ``main`` reports it."""

    def __init__(self, **node_kwargs) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        self._cameras: list[CameraIO] = []                # set while configured
        self._threads: list[threading.Thread] = []
        self._frames: FrameScheduler[_Frame] = FrameScheduler(())
        self._inferred: FrameSlot[_Inferred] = FrameSlot()
        self._active = False
        self._compiled_once = False
        self._compiled_sizes: set[tuple] = set()          # inference threads: what was logged
        self._timer = self._pub_diagnostics = self._input_poll = None
        self._tf: Optional[TfPoses] = None   # scale_source points with tf2_ros installed
        # Per camera name, totals since start: they survive a cleanup/configure cycle.
        self._stats: dict[str, ProcessingStats] = {}
        self._log_limit = KeyedRateLimit(WARN_THROTTLE_S)
        # Set by a worker when the model cannot run at all; ``main`` exits 1 with it.
        self.fatal_error: Optional[str] = None
        # The reason of the last failed configure, as logged.
        self.configure_error: Optional[str] = None
        try:
            self._params = ParameterStore(self, on_change=self._params_changed,
                                          reload_allowed=lambda: not self._cameras)
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
        names = list(p.cameras) or [""]
        try:
            engine = DepthEngine(EngineConfig(
                model_path=effective_model_path(p.model_path), device=p.device,
                performance_hint=p.performance_hint, inference_precision=p.inference_precision,
                cache_dir=p.cache_dir, num_streams=p.num_streams, num_threads=p.num_threads,
                allow_cpu_fallback=p.allow_cpu_fallback), max_compiled=2 * len(names))
        except (ParameterError, ModelLoadError) as exc:
            self.configure_error = str(exc)
            self.get_logger().error(f"error: {exc}")
            return FAILURE
        self.configure_error = None
        self._compiled_once = False
        self._compiled_sizes = set()
        events = publisher_events(self._update_inputs)
        if events is None:  # Humble: no matched events, so poll the subscription counts
            self._input_poll = self.create_timer(INPUT_POLL_S, self._update_inputs)
            self.get_logger().info(f"this rclpy has no publisher matched events: lazy input "
                                   f"polls the subscriber counts every {INPUT_POLL_S} s")
        out_qos = qos_profile(p.output_qos)

        def output(msg_type: type, topic: str) -> Any:
            return self.create_lifecycle_publisher(msg_type, topic, out_qos,
                                                   event_callbacks=events,
                                                   qos_overriding_options=OVERRIDABLE)

        for name in names:
            stats = self._stats.setdefault(name, ProcessingStats(rejection_kinds=REJECTION_KINDS))
            camera = CameraIO(name, CameraPipeline(engine), stats)
            camera.outputs = Outputs(
                depth=output(Image, camera.topic(TOPIC_DEPTH)),
                info=output(CameraInfo, camera.topic(TOPIC_DEPTH_INFO)),
                colorized=output(Image, camera.topic(TOPIC_COLORIZED)),
                points=output(PointCloud2, camera.topic(TOPIC_POINTS)),
                relative=None if engine.metadata.is_metric else output(
                    Image, camera.topic(TOPIC_RELATIVE)))
            self._cameras.append(camera)
        self._pub_diagnostics = self.create_publisher(DiagnosticArray, TOPIC_DIAGNOSTICS, 10)
        self._timer = self.create_timer(p.diagnostics_period, self._tick)
        self._tf = tf_poses(self) if p.scale_source == "points" else None
        self._log_configured(engine, p)
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        p = self._params.current
        self._frames, self._inferred = FrameScheduler(self._cameras), FrameSlot()
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
        for camera in self._cameras:
            for pub in camera.outputs or ():
                if pub is not None:
                    self.destroy_lifecycle_publisher(pub)
            camera.outputs = None
        self._cameras = []
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self.destroy_publisher(self._pub_diagnostics)
            self._timer = self._pub_diagnostics = None
        if self._input_poll is not None:
            self.destroy_timer(self._input_poll)
            self._input_poll = None
        self._tf = None

    def _log_configured(self, engine: DepthEngine, p: NodeParams) -> None:
        meta = engine.metadata
        net_h, net_w = engine.network_size
        if engine.device_name != p.device:
            self.get_logger().warning(
                f"device '{p.device}' is not available (OpenVINO sees "
                f"{', '.join(engine.core.available_devices)}); running on "
                f"{engine.device_name} because allow_cpu_fallback is true")
        image_topic = TOPIC_COMPRESSED if p.input_transport == "compressed" else TOPIC_IMAGE
        inputs = "; ".join(f"{self.resolve_topic_name(c.topic(image_topic))} + "
                           f"{self.resolve_topic_name(c.topic(TOPIC_CAMERA_INFO))}"
                           for c in self._cameras)
        self.get_logger().info(
            f"{meta.encoder} {meta.depth_type} model {engine.model_path.name} "
            f"({engine.model_choice}), network {net_h}x{net_w}, on {engine.device_name}; "
            f"input {inputs}")
        if p.scale_source != "none":
            reference = {"depth": TOPIC_REFERENCE_DEPTH, "points": TOPIC_REFERENCE_POINTS}.get(
                p.scale_source)
            where = (f"from the floor {p.camera_height} m below the camera" if not reference
                     else "from " + ", ".join(self.resolve_topic_name(c.topic(reference))
                                              for c in self._cameras))
            placed = ""
            if p.scale_source == "points":
                placed = ("; clouds placed with TF" if self._tf is not None else
                          "; tf2_ros is not installed: clouds placed with reference_extrinsic")
            self.get_logger().info(f"metric scale aligned {where}{placed}")
        elif not meta.is_metric:
            self.get_logger().info(
                "relative model: outputs are inverse depth, not metres; publishing "
                f"{TOPIC_RELATIVE} and {TOPIC_COLORIZED}. Set relative_scale > 0 to also publish "
                f"{TOPIC_DEPTH} and {TOPIC_POINTS}.")

    # --- executor thread -------------------------------------------------------------

    def _update_inputs(self) -> None:
        """Subscribe to each camera while active and watched, unsubscribe otherwise.

        Called on every publisher match change (or every INPUT_POLL_S where rclpy has no
        matched events) and each diagnostics tick (a missed event then costs at most one
        period).
        """
        for camera in self._cameras:
            watched = self._active and camera.outputs is not None and camera.outputs.watched()
            if watched and not camera.inputs:
                self._subscribe(camera, self._params.current)
            elif not watched and camera.inputs:
                for sub in camera.inputs:
                    self.destroy_subscription(sub)
                camera.inputs = []

    def _subscribe(self, camera: CameraIO, p: NodeParams) -> None:
        # A few CameraInfo may arrive between two images; keep them for stamp matching.
        # Created before the image subscription: the executor serves ready subscriptions
        # in creation order, so an image and its CameraInfo arriving together are paired.
        info_qos = qos_profile(p.input_qos, max(5, p.input_queue_depth))
        in_qos = qos_profile(p.input_qos, p.input_queue_depth)

        def subscribe(msg_type: type, topic: str, callback: Any, qos: Any) -> None:
            camera.inputs.append(self.create_subscription(
                msg_type, camera.topic(topic), lambda msg: callback(camera, msg), qos,
                qos_overriding_options=OVERRIDABLE))

        subscribe(CameraInfo, TOPIC_CAMERA_INFO, self._store_camera_info, info_qos)
        if p.input_transport == "compressed":
            subscribe(CompressedImage, TOPIC_COMPRESSED, self._slot_compressed, in_qos)
        else:
            subscribe(Image, TOPIC_IMAGE, self._slot_image, in_qos)
        if p.scale_source == "depth":
            subscribe(Image, TOPIC_REFERENCE_DEPTH, self._store_reference_depth, info_qos)
        elif p.scale_source == "points":
            subscribe(PointCloud2, TOPIC_REFERENCE_POINTS, self._store_reference_points,
                      info_qos)

    def _slot_image(self, camera: CameraIO, msg: Image) -> None:
        """Raw images are checked here.

        Decoding is only a view into the message, and a bad image is then counted even when
        a newer frame would have replaced it.
        """
        camera.stats.frame_received()
        try:
            image = image_to_array(msg, self._params.current.max_pixels)
        except ImageDecodeError as exc:
            self._reject(camera, exc.kind, f"ignoring image: {exc}")
            return
        self._offer(camera, msg.header, image)

    def _slot_compressed(self, camera: CameraIO, msg: CompressedImage) -> None:
        """Compressed images are decoded by the worker, that being real work.

        What the header gives away (an oversized image) is refused here, before queueing.
        """
        camera.stats.frame_received()
        try:
            check_compressed_header(msg, self._params.current.max_pixels)
        except ImageDecodeError as exc:
            self._reject(camera, exc.kind, f"ignoring image: {exc}")
            return
        self._offer(camera, msg.header, msg)

    def _offer(self, camera: CameraIO, header: Header,
               image: Union[DecodedImage, CompressedImage]) -> None:
        """Hand a well-formed frame to the workers unless its stamp goes backwards."""
        verdict, back_s = camera.pipeline.check_stamp(stamp_ns(header.stamp))
        if verdict is StampVerdict.BACKWARDS:
            self._reject(camera, REJECT_STAMP_BACKWARDS,
                         f"skipping image stamped {back_s:.3f} s before the previous one "
                         "(a second publisher on the topic, or reordered delivery)")
            return
        if verdict is StampVerdict.RESTART:
            camera.stats.stamp_restart()
            if self._log_limit.allow(f"{camera.name}:stamp_restart") is not None:
                self.get_logger().warning(camera.say(
                    f"image stamps jumped back by {back_s:.3f} s; taking it as the source "
                    f"restarting (rosbag loop, simulator reset): more than {RESTART_AFTER_S} s "
                    f"or {RESTART_AFTER_FRAMES} older frames in a row"))
        camera.arrivals += 1
        camera.frame_id = header.frame_id
        if self._frames.put(camera, _Frame(header, image, camera.arrivals)):
            camera.stats.frame_dropped()

    def _store_camera_info(self, camera: CameraIO, msg: CameraInfo) -> None:
        self._note(camera, camera.pipeline.add_calibration(camera_info_to_calibration(msg),
                                                           stamp_ns(msg.header.stamp)))

    def _store_reference_depth(self, camera: CameraIO, msg: Image) -> None:
        try:
            depth = reference_depth(msg)
        except ReferenceDecodeError as exc:
            self._reject(camera, exc.kind, f"ignoring {TOPIC_REFERENCE_DEPTH}: {exc}")
            return
        self._note(camera, camera.pipeline.alignment.add_depth(
            depth, stamp_ns(msg.header.stamp), self._params.current))

    def _store_reference_points(self, camera: CameraIO, msg: PointCloud2) -> None:
        try:
            points = cloud_points(msg)
        except ReferenceDecodeError as exc:
            self._reject(camera, exc.kind, f"ignoring {TOPIC_REFERENCE_POINTS}: {exc}")
            return
        pose = None
        if self._tf is not None:
            try:
                pose = self._tf.pose(msg.header.frame_id, camera.frame_id, msg.header.stamp)
            except LookupError as exc:
                self._reject(camera, REFERENCE_EXTRINSIC,
                             f"ignoring {TOPIC_REFERENCE_POINTS}: {exc}")
                return
        self._note(camera, camera.pipeline.alignment.add_points(
            points, stamp_ns(msg.header.stamp), self._params.current, pose))

    def _note(self, camera: CameraIO, note: Optional[Note]) -> None:
        if note is None:
            return
        if note.is_rejection:
            self._reject(camera, note.key, note.text)
        elif self._log_limit.allow(f"{camera.name}:{note.key}") is not None:
            self.get_logger().warning(camera.say(note.text))

    def _reject(self, camera: CameraIO, kind: str, text: str) -> None:
        """Count a refused message by reason.

        Log it unless this camera's reason was logged within the last WARN_THROTTLE_S
        (the line then says how many were not).
        """
        camera.stats.message_rejected(kind, text)
        held = self._log_limit.allow(f"{camera.name}:{kind}")
        if held is not None:
            more = f" [{held} more {kind} rejection(s) not logged]" if held else ""
            self.get_logger().warning(camera.say(text + more))

    def _params_changed(self, old: NodeParams, new: NodeParams) -> None:
        metric = all(c.pipeline.metric_model for c in self._cameras)
        if (self._cameras and not metric and new.scale_source == "none"
                and (old.relative_scale > 0) != (new.relative_scale > 0)):
            state = "now" if new.relative_scale > 0 else "no longer"
            self.get_logger().info(f"relative_scale={new.relative_scale}: {state} publishing "
                                   f"{TOPIC_DEPTH} and {TOPIC_POINTS}")

    def _tick(self) -> None:
        if self._input_poll is None:  # the safety net for a missed matched event
            self._update_inputs()
        p = self._params.current
        statuses = []
        for camera in self._cameras:
            pipeline = camera.pipeline
            engine = pipeline.engine
            net_h, net_w = engine.network_size
            name = self.get_fully_qualified_name().lstrip("/")
            statuses.append(status_from_snapshot(
                camera.stats.snapshot(),
                name=f"{name}: {camera.name} depth estimation" if camera.name
                else f"{name}: depth estimation",
                hardware_id=engine.device_name,
                extra={"model type": "metric" if pipeline.metric_model else "relative",
                       "network size": f"{net_h}x{net_w}",
                       "calibration": pipeline.calibration_source,
                       "lifecycle": "active" if self._active else "inactive",
                       **({"camera": camera.name} if camera.name else {}),
                       **(pipeline.alignment.status(p) if p.scale_source != "none" else {})}))
        if statuses:
            self._pub_diagnostics.publish(
                diagnostic_array(statuses, self.get_clock().now().to_msg()))

    # --- inference threads -----------------------------------------------------------

    def _run_inference(self, lane: int) -> None:
        frames, inferred_slot = self._frames, self._inferred
        while True:
            taken = frames.take()
            if taken is None:
                return
            camera, frame = taken
            try:
                inferred = self._infer(camera, frame, self._params.current, lane)
            except ModelLoadError as exc:
                if not self._compiled_once:
                    self._stop_fatally(str(exc))
                    return
                self._frame_failed(camera, exc)
                continue
            except Exception as exc:  # keep serving frames; a shutdown race ends the loop
                if frames.closed or not self.context.ok():
                    return
                self._frame_failed(camera, exc)
                continue
            if inferred is not None and not inferred_slot.put_when_free(inferred):
                return

    def _infer(self, camera: CameraIO, frame: _Frame, p: NodeParams,
               lane: int) -> Optional[_Inferred]:
        """Decode and run the network; None when the frame needs no output."""
        pipeline = camera.pipeline
        wanted = self._wanted(camera, p)
        if not wanted.anything:
            camera.stats.frame_skipped()
            return None
        image = frame.image
        if isinstance(image, CompressedImage):
            try:
                image = compressed_to_array(image, p.max_pixels)
            except ImageDecodeError as exc:
                self._reject(camera, exc.kind, f"ignoring image: {exc}")
                return None
        started = time.perf_counter()
        net = pipeline.infer(image, stamp_ns(frame.header.stamp), p, lane)
        inference_s = time.perf_counter() - started
        self._compiled_once = True
        self._log_compiled(pipeline, net.image, p)
        return _Inferred(camera, frame.sequence, frame.header, net, inference_s, p, wanted)

    def _wanted(self, camera: CameraIO, p: NodeParams) -> Wanted:
        outputs = camera.outputs
        if outputs is None:
            return Wanted(False, False, False, False)
        metres = camera.pipeline.has_metres(p)
        return Wanted(
            depth=metres and outputs.depth.get_subscription_count() > 0,
            points=metres and outputs.points.get_subscription_count() > 0,
            colorized=outputs.colorized.get_subscription_count() > 0,
            relative=(outputs.relative is not None
                      and outputs.relative.get_subscription_count() > 0))

    def _log_compiled(self, pipeline: CameraPipeline, image: DecodedImage,
                      p: NodeParams) -> None:
        """Log, once per image size, how the model was compiled for it."""
        height, width = image.pixels.shape[:2]
        key = (height, width, image.order, pipeline.output_size(image.pixels.shape, p))
        if key in self._compiled_sizes:
            return
        self._compiled_sizes.add(key)
        compiled = pipeline.engine.compiled(*key)
        precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        streams = compiled.get_property("NUM_STREAMS")
        self.get_logger().info(
            f"compiled for {width}x{height} images: computing in {precision}, {streams} "
            f"stream(s), {p.inference_workers} inference worker(s)")

    def _frame_failed(self, camera: CameraIO, exc: Exception) -> None:
        camera.stats.frame_failed()
        if self._log_limit.allow(f"{camera.name}:frame_failed") is not None:
            self.get_logger().error(camera.say(f"frame skipped: {type(exc).__name__}: {exc}"))

    def _stop_fatally(self, reason: str) -> None:
        """Stop like a start-up fault would.

        The model is compiled for the camera's image size, so only the first frame shows
        whether the device can run it at all. If no compile has ever succeeded the node
        cannot do anything useful. (Once one has, a failure for a new image size is per
        frame and the node carries on.)
        """
        self.fatal_error = reason
        self._frames.close()
        self._inferred.close()
        self.context.try_shutdown()

    # --- publisher thread ------------------------------------------------------------

    def _run_publisher(self) -> None:
        slot = self._inferred
        while True:
            inferred = slot.take()
            if inferred is None:
                return
            try:
                self._publish(inferred)
            except Exception as exc:
                if slot.closed or not self.context.ok():
                    return
                self._frame_failed(inferred.camera, exc)

    def _publish(self, inferred: _Inferred) -> None:
        camera = inferred.camera
        outputs = camera.outputs
        if outputs is None:  # cleaned up meanwhile
            return
        if inferred.sequence < camera.last_published:
            # Several workers: a newer frame of this camera finished first. Publishing
            # this one now would send its outputs back in time.
            camera.stats.frame_dropped()
            return
        camera.last_published = inferred.sequence
        header = inferred.header
        out = camera.pipeline.finish(inferred.net, stamp_ns(header.stamp), inferred.params,
                                     inferred.wanted)
        for note in out.notes:
            self._note(camera, note)
        if out.relative is not None:
            outputs.relative.publish(array_to_image(out.relative, "32FC1", header))
        if inferred.wanted.depth and out.depth is not None:
            outputs.depth.publish(array_to_image(out.depth, "32FC1", header))
        if outputs.info.get_subscription_count() > 0:
            outputs.info.publish(intrinsics_to_camera_info(out.intrinsics, header,
                                                           out.calibration))
        if out.colorized is not None:
            outputs.colorized.publish(array_to_image(out.colorized, "bgr8", header))
        if out.points is not None:
            outputs.points.publish(camera.cloud_builder.build(out.points, header, out.colors))
        end_to_end = None
        if _has_stamp(header):
            end_to_end = (self.get_clock().now() - Time.from_msg(header.stamp)).nanoseconds * 1e-9
        camera.stats.frame_published(inferred.inference_s, end_to_end)

    # --- teardown --------------------------------------------------------------------

    def _stop_workers(self) -> None:
        """Stop the inference and publisher threads; safe to call twice."""
        self._frames.close()
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
    silence_decoder_logs()  # the node reports undecodable images itself, rate-limited
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
