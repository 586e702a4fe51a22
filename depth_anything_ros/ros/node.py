"""``depth_anything_node``: camera images in, metric depth, colorized depth and clouds out.

A managed (lifecycle) node and a thin one. It holds the lifecycle, the parameters, the
subscriptions and publishers and the diagnostics timer; the frames themselves go through
the ROS-free ``FrameRunner`` (``pipeline.runner``) under its ``LIVE`` policy, the same
runner the bag tool uses: its inference lanes take each camera's newest frame (the one
that waited longest first; an overwritten frame counts as dropped, so latency never grows
behind a queue) and its finisher publishes them in order through ``PublisherSink``. The
executor thread only hands messages over, so it stays free for parameters, lifecycle and
diagnostics however slow the model is.

Lifecycle, the Nav2 way: configure validates, loads the IR (from ``engine_factory``, which
tests replace) and creates the publishers (a failure is logged in one line, returns
FAILURE and leaves the node unconfigured); activate starts a runner and the input;
deactivate stops both, and nothing is published after it; cleanup frees the engine. With
``autostart`` (default) the node drives itself to active at start-up, and a fault there
ends the process with exit code 1 and one ``error:`` line.

One node serves one camera, or every camera the ``cameras`` parameter names, from one
model in memory, each with its own topics, state, counters and /diagnostics status.
Input is lazy, as depth_image_proc's: a camera's subscriptions exist only while one of its
image or cloud outputs has a subscriber. Bad input never stops the node: each refused
message is counted by reason in /diagnostics and logged at most once per reason every
few seconds.
"""

from __future__ import annotations

import os
import re
import threading
from typing import Any, Callable, Optional

from diagnostic_msgs.msg import DiagnosticArray
import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from depth_anything_ros.geometry.reference import REFERENCE_EXTRINSIC
from depth_anything_ros.inference.engine import DepthEngine, EngineConfig, ModelLoadError
from depth_anything_ros.pipeline.camera import CameraPipeline
from depth_anything_ros.pipeline.camera_state import CameraState
from depth_anything_ros.pipeline.messages.image_input import silence_decoder_logs
from depth_anything_ros.pipeline.messages.output_layout import header_stamp_ns
from depth_anything_ros.pipeline.notes import REJECTION_KINDS
from depth_anything_ros.pipeline.outputs import KIND_CAMERA_INFO, KIND_POINTS, OUTPUTS
from depth_anything_ros.pipeline.parameters import NodeParams, ParameterError
from depth_anything_ros.pipeline.runner import FrameRunner, Policy
from depth_anything_ros.pipeline.stats import ProcessingStats
from depth_anything_ros.ros.camera_io import (CameraIO, TOPIC_CAMERA_INFO,  # noqa: F401
                                              TOPIC_COLORIZED, TOPIC_COMPRESSED, TOPIC_DEPTH,
                                              TOPIC_IMAGE, TOPIC_POINTS, TOPIC_REFERENCE_DEPTH,
                                              TOPIC_REFERENCE_POINTS)
from depth_anything_ros.ros.compat import INPUT_POLL_S, publisher_events
from depth_anything_ros.ros.dds_profile import apply_default_profile
from depth_anything_ros.ros.diagnostics import diagnostic_array, status_from_snapshot
from depth_anything_ros.ros.node_log import log_configuration, NodeLog
from depth_anything_ros.ros.parameters import effective_model_path, ParameterStore
from depth_anything_ros.ros.publisher_sink import PublisherSink
from depth_anything_ros.ros.qos import OVERRIDABLE, qos_profile
from depth_anything_ros.ros.tf_pose import tf_poses, TfPoses

NODE_NAME = "depth_anything"
TOPIC_DIAGNOSTICS = "/diagnostics"
# Bound on joining the runner's threads at deactivate and shutdown; an inference call
# already running finishes in the background (daemon threads) rather than holding up
# Ctrl-C, and its outputs go nowhere (lifecycle publishers are disabled by then).
WORKER_JOIN_S = 1.5
SUCCESS = TransitionCallbackReturn.SUCCESS
FAILURE = TransitionCallbackReturn.FAILURE
MSG_TYPES = {"32FC1": Image, "bgr8": Image, KIND_CAMERA_INFO: CameraInfo,
             KIND_POINTS: PointCloud2}
# (engine config, how many compiled graphs to keep) -> engine; tests pass their own.
EngineFactory = Callable[[EngineConfig, int], DepthEngine]


def default_engine(config: EngineConfig, max_compiled: int) -> DepthEngine:
    return DepthEngine(config, max_compiled=max_compiled)


class DepthNode(LifecycleNode):
    """Raises ParameterError when its parameters cannot be declared; ``main`` reports it."""

    def __init__(self, engine_factory: EngineFactory = default_engine, **node_kwargs) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        self._engine_factory = engine_factory
        self._cameras: list[CameraIO] = []                # set while configured
        self._runner: Optional[FrameRunner] = None        # set while active
        # Lanes a stop left inside the network; the process waits for them at its end.
        self._lingering: list[threading.Thread] = []
        self._active = False
        self._timer = self._pub_diagnostics = self._input_poll = None
        self._tf: Optional[TfPoses] = None   # scale_source points with tf2_ros installed
        # Per camera name, totals since start: they survive a cleanup/configure cycle.
        self._stats: dict[str, ProcessingStats] = {}
        self._log = NodeLog(self.get_logger())
        # Set by the runner when the model cannot run at all; ``main`` exits 1 with it.
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
            engine = self._engine_factory(EngineConfig(
                model_path=effective_model_path(p.model_path), device=p.device,
                performance_hint=p.performance_hint, inference_precision=p.inference_precision,
                cache_dir=p.cache_dir, num_streams=p.num_streams, num_threads=p.num_threads,
                allow_cpu_fallback=p.allow_cpu_fallback), 2 * len(names))
        except (ParameterError, ModelLoadError) as exc:
            self.configure_error = str(exc)
            self.get_logger().error(f"error: {exc}")
            return FAILURE
        self.configure_error = None
        events = publisher_events(self._update_inputs)
        if events is None:  # Humble: no matched events, so poll the subscription counts
            self._input_poll = self.create_timer(INPUT_POLL_S, self._update_inputs)
            self.get_logger().info(f"this rclpy has no publisher matched events: lazy input "
                                   f"polls the subscriber counts every {INPUT_POLL_S} s")
        out_qos = qos_profile(p.output_qos)
        for name in names:
            stats = self._stats.setdefault(name, ProcessingStats(rejection_kinds=REJECTION_KINDS))
            pipeline = CameraPipeline(engine)
            camera = CameraIO(CameraState(name, pipeline, stats, lambda: self._params.current))
            absent = pipeline.absent_outputs()
            camera.outputs = {
                output.key: self.create_lifecycle_publisher(
                    MSG_TYPES[output.kind], camera.topic(output.name), out_qos,
                    event_callbacks=events, qos_overriding_options=OVERRIDABLE)
                for output in OUTPUTS if output.key not in absent}
            self._cameras.append(camera)
        self._pub_diagnostics = self.create_publisher(DiagnosticArray, TOPIC_DIAGNOSTICS, 10)
        self._timer = self.create_timer(p.diagnostics_period, self._tick)
        self._tf = tf_poses(self) if p.scale_source == "points" else None
        log_configuration(self, engine, p, [c.topic for c in self._cameras],
                          self._tf is not None)
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        p = self._params.current
        self._runner = FrameRunner(
            [camera.state for camera in self._cameras], PublisherSink(self._cameras),
            self._log, Policy.LIVE, workers=p.inference_workers,
            clock_ns=lambda: self.get_clock().now().nanoseconds)
        self._runner.on_fatal = self._stop_fatally
        self._runner.start()
        result = super().on_activate(state)
        self._active = True
        self._update_inputs()
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_deactivate(state)  # publishers off first: nothing more goes out
        self._active = False
        self._update_inputs()
        self._stop_runner()
        return result

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_cleanup(state)
        self._release()
        return result

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        self._update_inputs()
        self._stop_runner()
        self._release()
        return SUCCESS

    def _release(self) -> None:
        """Undo configure: publishers, timers and, with the cameras, the engine."""
        for camera in self._cameras:
            for pub in (camera.outputs or {}).values():
                self.destroy_lifecycle_publisher(pub)
            camera.outputs = None
        self._cameras = []
        for timer in (self._timer, self._input_poll):
            if timer is not None:
                self.destroy_timer(timer)
        if self._pub_diagnostics is not None:
            self.destroy_publisher(self._pub_diagnostics)
        self._timer = self._pub_diagnostics = self._input_poll = None
        self._tf = None

    def _stop_runner(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            self._lingering += runner.stop(WORKER_JOIN_S)

    def _stop_fatally(self, reason: str) -> None:
        """Stop like a start-up fault: the runner found the model cannot run on the device."""
        self.fatal_error = reason
        self.context.try_shutdown()

    # --- executor thread -------------------------------------------------------------

    def _update_inputs(self) -> None:
        """Subscribe to each camera while active and watched, unsubscribe otherwise.

        Called on every publisher match change (or every INPUT_POLL_S where rclpy has no
        matched events) and each diagnostics tick (a missed event then costs at most one
        period).
        """
        for camera in self._cameras:
            watched = self._active and camera.watched()
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
        state = camera.state

        def subscribe(msg_type: type, topic: str, qos: Any,
                      take: Callable[[FrameRunner, Any, int], None]) -> None:
            def callback(msg: Any) -> None:
                runner = self._runner
                if runner is not None:
                    take(runner, msg, header_stamp_ns(msg.header))

            camera.inputs.append(self.create_subscription(
                msg_type, camera.topic(topic), callback, qos, qos_overriding_options=OVERRIDABLE))

        subscribe(CameraInfo, TOPIC_CAMERA_INFO, info_qos,
                  lambda runner, msg, stamp: runner.camera_info(state, msg, stamp))
        compressed = p.input_transport == "compressed"
        subscribe(CompressedImage if compressed else Image,
                  TOPIC_COMPRESSED if compressed else TOPIC_IMAGE, in_qos,
                  lambda runner, msg, stamp: runner.image(state, msg.header, stamp, msg,
                                                          compressed))
        if p.scale_source == "depth":
            subscribe(Image, TOPIC_REFERENCE_DEPTH, info_qos,
                      lambda runner, msg, stamp: runner.reference(
                          state, "depth", msg, stamp, TOPIC_REFERENCE_DEPTH))
        elif p.scale_source == "points":
            subscribe(PointCloud2, TOPIC_REFERENCE_POINTS, info_qos,
                      lambda runner, msg, stamp: self._reference_points(runner, state, msg,
                                                                        stamp))

    def _reference_points(self, runner: FrameRunner, state: CameraState, msg: PointCloud2,
                          stamp: int) -> None:
        """Place a reference cloud in the camera's frame with TF (when tf2_ros is there)."""
        pose = None
        if self._tf is not None:
            try:
                pose = self._tf.pose(msg.header.frame_id, state.frame_id, msg.header.stamp)
            except LookupError as exc:
                runner.reject(state, REFERENCE_EXTRINSIC,
                              f"ignoring {TOPIC_REFERENCE_POINTS}: {exc}")
                return
        runner.reference(state, "points", msg, stamp, TOPIC_REFERENCE_POINTS, pose)

    def _params_changed(self, old: NodeParams, new: NodeParams) -> None:
        metric = all(c.state.pipeline.metric_model for c in self._cameras)
        if (self._cameras and not metric and new.scale_source == "none"
                and (old.relative_scale > 0) != (new.relative_scale > 0)):
            state = "now" if new.relative_scale > 0 else "no longer"
            self.get_logger().info(f"relative_scale={new.relative_scale}: {state} publishing "
                                   f"{TOPIC_DEPTH} and {TOPIC_POINTS}")

    def _tick(self) -> None:
        """Publish /diagnostics: what each camera published, counted, and how."""
        if self._input_poll is None:  # the safety net for a missed matched event
            self._update_inputs()
        p = self._params.current
        node = self.get_fully_qualified_name().lstrip("/")
        statuses = []
        for camera in self._cameras:
            pipeline = camera.state.pipeline
            net_h, net_w = pipeline.engine.network_size
            snap = camera.state.stats.snapshot()
            statuses.append(status_from_snapshot(
                snap, name=f"{node}: {camera.name} depth estimation" if camera.name
                else f"{node}: depth estimation",
                hardware_id=pipeline.engine.device_name,
                extra={"model type": "metric" if pipeline.metric_model else "relative",
                       "network size": f"{net_h}x{net_w}",
                       "calibration": snap.calibration_source,
                       "lifecycle": "active" if self._active else "inactive",
                       **({"camera": camera.name} if camera.name else {}),
                       **(pipeline.alignment.status(p) if p.scale_source != "none" else {})}))
        if statuses:
            self._pub_diagnostics.publish(
                diagnostic_array(statuses, self.get_clock().now().to_msg()))

    def destroy_node(self) -> None:
        self._stop_runner()
        # A lane still inside the network (a Large model's frame takes seconds) must leave
        # OpenVINO before Python finalizes the process under it, which crashes (SIGSEGV):
        # so the exit waits for that one call. Its frame goes nowhere.
        for thread in self._lingering:
            thread.join()
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
