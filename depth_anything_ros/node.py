"""``depth_anything_node``: camera images in, metric depth, colorized depth and clouds out.

A thin rclpy adapter over the engine and the numpy helpers. Callbacks only hand
messages over: the image callback drops the newest frame into a FrameSlot and an
inference thread works on whatever is newest when it is free. So the executor stays
free for parameters and diagnostics however slow the model is, and latency never grows
behind a queue (overwritten frames are counted as dropped).

A second thread builds and publishes the outputs of one frame while the inference
thread already runs the next (OpenVINO releases the GIL), so the output rate is set by
inference alone, not inference plus message building. At most one inferred frame waits
between the two: the inference thread holds its result until the publisher is free
rather than discard finished work.

Every output carries the input image's header. Outputs are computed only while
someone subscribes to them; with no subscriber to an image or cloud output a frame
costs nothing beyond being received (depth/camera_info alone does not start inference).

Bad input never stops the node: each refused message is counted by reason in
/diagnostics and logged at most once per reason every few seconds. Raw images are
checked on arrival; compressed ones on arrival as far as their header tells, the rest
when the worker decodes them. Start-up faults (model, device, parameters, arguments) end
the process with exit code 1 and one line saying what to fix.
"""

from __future__ import annotations

import os
import re
import threading
import time
from typing import NamedTuple, Optional, Union

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header

from depth_anything_ros.camera_info_ring import CameraInfoRing, calibration_fits
from depth_anything_ros.cloud_msg import CloudBuilder
from depth_anything_ros.colorize import Colorizer
from depth_anything_ros.dds_profile import apply_default_profile
from depth_anything_ros.diagnostics import (KeyedRateLimit, ProcessingStats, diagnostic_array,
                                            status_from_snapshot)
from depth_anything_ros.engine import DepthEngine, EngineConfig, ModelLoadError
from depth_anything_ros.frame_slot import FrameSlot
from depth_anything_ros.geometry import Intrinsics, RayGrid, relative_to_metric
from depth_anything_ros.node_params import (NodeParams, ParameterError, ParameterStore,
                                            effective_model_path)
from depth_anything_ros.ros_codec import (IMAGE_REJECTIONS, DecodedImage, ImageDecodeError,
                                          array_to_image, camera_info_to_intrinsics,
                                          check_compressed_header, compressed_to_array,
                                          image_to_array, intrinsics_to_camera_info)
from depth_anything_ros.stamp_order import (RESTART_AFTER_FRAMES, RESTART_AFTER_S, StampOrder,
                                            StampVerdict)

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
# Rejection reasons besides the image decoding ones (ros_codec.IMAGE_REJECTIONS).
REJECT_CAMERA_INFO_INVALID = "camera_info_invalid"      # zero/non-finite focal length, bad size
REJECT_CAMERA_INFO_SIZE = "camera_info_size_mismatch"   # neither the image's size nor a scaling
REJECT_STAMP_BACKWARDS = "stamp_backwards"
REJECTION_KINDS = IMAGE_REJECTIONS + (REJECT_CAMERA_INFO_INVALID, REJECT_CAMERA_INFO_SIZE,
                                      REJECT_STAMP_BACKWARDS)
# Bound on joining all worker threads at shutdown; an inference call already running
# finishes in the background (daemon threads) rather than holding up Ctrl-C.
WORKER_JOIN_S = 1.5
# Enough CameraInfo to pair each of the last few frames with its own calibration.
CAMERA_INFO_RING = 16


def qos_profile(choice: str, depth: int = 1) -> QoSProfile:
    """Depth 1 by default: an old depth frame is worth nothing once a newer one exists
    (input_queue_depth trades that for counting every frame)."""
    reliability = (ReliabilityPolicy.BEST_EFFORT if choice == "sensor_data"
                   else ReliabilityPolicy.RELIABLE)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=reliability)


def _has_stamp(header: Header) -> bool:
    return header.stamp.sec != 0 or header.stamp.nanosec != 0


class _Frame(NamedTuple):
    header: Header
    image: Union[DecodedImage, CompressedImage]  # compressed data is decoded by the worker
    sequence: int  # arrival order; stamps may restart (rosbag loop), this never does


class _Wanted(NamedTuple):
    """Outputs someone subscribes to, decided once per frame before inference."""
    metric: bool       # metres available: a metric model, or relative_scale > 0
    depth: bool
    points: bool
    colorized: bool
    relative: bool


class _Inferred(NamedTuple):
    """What an inference thread hands to the publisher thread."""
    sequence: int
    header: Header
    image: DecodedImage
    raw: np.ndarray           # network output at output size (metres or inverse depth)
    inference_s: float
    params: NodeParams        # the frame is finished with the parameters it started with
    wanted: _Wanted


class DepthNode(Node):
    """Raises ParameterError or ModelLoadError when it cannot start; ``main`` reports them."""

    def __init__(self, **node_kwargs) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        self._slot: FrameSlot[_Frame] = FrameSlot()
        self._inferred: FrameSlot[_Inferred] = FrameSlot()
        self._threads: list[threading.Thread] = []
        self._arrivals = 0            # executor thread only
        self._last_published = -1     # publisher thread only
        # Set by the worker when the model cannot run at all; ``main`` exits 1 with it.
        self.fatal_error: Optional[str] = None
        try:
            self._setup()
        except BaseException:
            self.destroy_node()
            raise

    def _setup(self) -> None:
        self._params = ParameterStore(self, on_change=self._params_changed)
        p = self._params.current
        self._engine = DepthEngine(EngineConfig(
            model_path=effective_model_path(p.model_path), device=p.device,
            performance_hint=p.performance_hint, inference_precision=p.inference_precision,
            cache_dir=p.cache_dir, num_streams=p.num_streams, num_threads=p.num_threads,
            allow_cpu_fallback=p.allow_cpu_fallback))
        self._metric = self._engine.metadata.is_metric
        self._stats = ProcessingStats(rejection_kinds=REJECTION_KINDS)
        self._log_limit = KeyedRateLimit(WARN_THROTTLE_S)
        self._stamps = StampOrder()  # read and written by the executor thread only
        self._compiled_once = False
        self._calibrations = CameraInfoRing(CAMERA_INFO_RING, camera_info_to_intrinsics)
        self._calibration_source = "none yet"
        self._cloud_builder = CloudBuilder()
        self._grid: Optional[RayGrid] = None
        self._colorizer: Optional[Colorizer] = None

        out_qos = qos_profile(p.output_qos)
        self._pub_depth = self.create_publisher(Image, TOPIC_DEPTH, out_qos)
        self._pub_info = self.create_publisher(CameraInfo, TOPIC_DEPTH_INFO, out_qos)
        self._pub_colorized = self.create_publisher(Image, TOPIC_COLORIZED, out_qos)
        self._pub_points = self.create_publisher(PointCloud2, TOPIC_POINTS, out_qos)
        self._pub_relative = (None if self._metric else
                              self.create_publisher(Image, TOPIC_RELATIVE, out_qos))
        self._pub_diagnostics = self.create_publisher(DiagnosticArray, TOPIC_DIAGNOSTICS, 10)

        # A few CameraInfo may arrive between two images; keep them for stamp matching.
        # Created before the image subscription: the executor serves ready subscriptions
        # in creation order, so an image and its CameraInfo arriving together are paired.
        info_sub = self.create_subscription(
            CameraInfo, TOPIC_CAMERA_INFO, self._store_camera_info,
            qos_profile(p.input_qos, max(5, p.input_queue_depth)))
        in_qos = qos_profile(p.input_qos, p.input_queue_depth)
        if p.input_transport == "compressed":
            image_sub = self.create_subscription(
                CompressedImage, TOPIC_COMPRESSED, self._slot_compressed, in_qos)
        else:
            image_sub = self.create_subscription(Image, TOPIC_IMAGE, self._slot_image, in_qos)
        self.create_timer(p.diagnostics_period, self._publish_diagnostics)

        meta = self._engine.metadata
        net_h, net_w = self._engine.network_size
        if self._params.unknown:
            self.get_logger().warning(
                f"ignoring unknown parameter(s) {', '.join(self._params.unknown)}: this node "
                "has no such parameter (see config/depth.yaml for the names)")
        if self._engine.device_name != p.device:
            self.get_logger().warning(
                f"device '{p.device}' is not available (OpenVINO sees "
                f"{', '.join(self._engine.core.available_devices)}); running on "
                f"{self._engine.device_name} because allow_cpu_fallback is true")
        self.get_logger().info(
            f"{meta.encoder} {meta.depth_type} model {self._engine.model_path.name} "
            f"({self._engine.model_choice}), network {net_h}x{net_w}, on "
            f"{self._engine.device_name}; input {image_sub.topic_name} + {info_sub.topic_name}")
        if not self._metric:
            self.get_logger().info(
                "relative model: outputs are inverse depth, not metres; publishing "
                f"{TOPIC_RELATIVE} and {TOPIC_COLORIZED}. Set relative_scale > 0 to also publish "
                f"{TOPIC_DEPTH} and {TOPIC_POINTS}.")
        workers = [(self._run_inference, f"depth_inference_{lane}", (lane,))
                   for lane in range(p.inference_workers)]
        for target, name, args in workers + [(self._run_publisher, "depth_publish", ())]:
            thread = threading.Thread(target=target, name=name, args=args, daemon=True)
            thread.start()
            self._threads.append(thread)

    # --- executor thread -------------------------------------------------------------

    def _slot_image(self, msg: Image) -> None:
        """Raw images are checked here: decoding is only a view into the message, and a
        bad image is then counted even when a newer frame would have replaced it."""
        self._stats.frame_received()
        try:
            image = image_to_array(msg, self._params.current.max_pixels)
        except ImageDecodeError as exc:
            self._reject(exc.kind, f"ignoring image: {exc}")
            return
        self._offer(msg.header, image)

    def _slot_compressed(self, msg: CompressedImage) -> None:
        """Compressed images are decoded by the worker, that being real work; what the
        header gives away (an oversized image) is refused here, before queueing."""
        self._stats.frame_received()
        try:
            check_compressed_header(msg, self._params.current.max_pixels)
        except ImageDecodeError as exc:
            self._reject(exc.kind, f"ignoring image: {exc}")
            return
        self._offer(msg.header, msg)

    def _offer(self, header: Header, image: Union[DecodedImage, CompressedImage]) -> None:
        """Hand a well-formed frame to the workers unless its stamp goes backwards."""
        verdict, back_s = self._stamps.check(header.stamp)
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

    def _reject(self, kind: str, text: str) -> None:
        """Count a refused message by reason; log it unless this reason was logged
        within the last WARN_THROTTLE_S (the line then says how many were not)."""
        self._stats.message_rejected(kind, text)
        held = self._log_limit.allow(kind)
        if held is not None:
            more = f" [{held} more {kind} rejection(s) not logged]" if held else ""
            self.get_logger().warning(text + more)

    def _store_camera_info(self, msg: CameraInfo) -> None:
        try:
            self._calibrations.add(msg)
        except ValueError as exc:
            self._reject(REJECT_CAMERA_INFO_INVALID, f"ignoring camera_info: {exc}")

    def _params_changed(self, old: NodeParams, new: NodeParams) -> None:
        if not self._metric and (old.relative_scale > 0) != (new.relative_scale > 0):
            state = "now" if new.relative_scale > 0 else "no longer"
            self.get_logger().info(f"relative_scale={new.relative_scale}: {state} publishing "
                                   f"{TOPIC_DEPTH} and {TOPIC_POINTS}")

    def _publish_diagnostics(self) -> None:
        snap = self._stats.snapshot()
        net_h, net_w = self._engine.network_size
        status = status_from_snapshot(
            snap, name=f"{self.get_fully_qualified_name().lstrip('/')}: depth estimation",
            hardware_id=self._engine.device_name,
            extra={"model type": "metric" if self._metric else "relative",
                   "network size": f"{net_h}x{net_w}",
                   "calibration": self._calibration_source})
        self._pub_diagnostics.publish(diagnostic_array([status], self.get_clock().now().to_msg()))

    # --- inference thread ------------------------------------------------------------

    def _run_inference(self, lane: int) -> None:
        while True:
            frame = self._slot.take()
            if frame is None:
                return
            try:
                inferred = self._infer(frame, self._params.current, lane)
            except ModelLoadError as exc:
                if not self._compiled_once:
                    self._stop_fatally(str(exc))
                    return
                self._frame_failed(exc)
                continue
            except Exception as exc:  # keep serving frames; a shutdown race ends the loop
                if self._slot.closed or not self.context.ok():
                    return
                self._frame_failed(exc)
                continue
            if inferred is not None and not self._inferred.put_when_free(inferred):
                return

    def _run_publisher(self) -> None:
        while True:
            inferred = self._inferred.take()
            if inferred is None:
                return
            try:
                self._publish(inferred)
            except Exception as exc:
                if self._inferred.closed or not self.context.ok():
                    return
                self._frame_failed(exc)

    def _frame_failed(self, exc: Exception) -> None:
        self._stats.frame_failed()
        if self._log_limit.allow("frame_failed") is not None:
            self.get_logger().error(f"frame skipped: {type(exc).__name__}: {exc}")

    def _stop_fatally(self, reason: str) -> None:
        """The model is compiled for the camera's image size, so only the first frame
        shows whether the device can run it at all. If no compile has ever succeeded
        the node cannot do anything useful: stop like a start-up fault would. (Once
        one has, a failure for a new image size is per frame and the node carries on.)"""
        self.fatal_error = reason
        self._slot.close()
        self._inferred.close()
        self.context.try_shutdown()

    def _wanted(self, p: NodeParams) -> _Wanted:
        metric = self._metric or p.relative_scale > 0
        return _Wanted(
            metric=metric,
            depth=metric and self._pub_depth.get_subscription_count() > 0,
            points=metric and self._pub_points.get_subscription_count() > 0,
            colorized=self._pub_colorized.get_subscription_count() > 0,
            relative=(self._pub_relative is not None
                      and self._pub_relative.get_subscription_count() > 0))

    def _infer(self, frame: _Frame, p: NodeParams, lane: int) -> Optional[_Inferred]:
        """Decode and run the network; None when the frame needs no output."""
        wanted = self._wanted(p)
        if not (wanted.depth or wanted.points or wanted.colorized or wanted.relative):
            self._stats.frame_skipped()
            return None
        image = frame.image
        if isinstance(image, CompressedImage):
            try:
                image = compressed_to_array(image, p.max_pixels)
            except ImageDecodeError as exc:
                self._reject(exc.kind, f"ignoring image: {exc}")
                return None
        if p.output_resolution == "network":
            output_size = self._engine.network_size
        else:
            output_size = image.pixels.shape[:2]
        started = time.perf_counter()
        raw = self._engine.infer(image.pixels, image.order, output_size, lane)
        inference_s = time.perf_counter() - started
        if not self._compiled_once:
            self._compiled_once = True
            self._log_compiled(image, output_size)
        return _Inferred(frame.sequence, frame.header, image, raw, inference_s, p, wanted)

    def _log_compiled(self, image: DecodedImage, output_size: tuple[int, int]) -> None:
        compiled = self._engine.compiled(*image.pixels.shape[:2], image.order, output_size)
        precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        streams = compiled.get_property("NUM_STREAMS")
        self.get_logger().info(
            f"compiled for {image.pixels.shape[1]}x{image.pixels.shape[0]} images: computing "
            f"in {precision}, {streams} stream(s), {self._params.current.inference_workers} "
            "inference worker(s)", once=True)

    # --- publisher thread ------------------------------------------------------------

    def _publish(self, inferred: _Inferred) -> None:
        if inferred.sequence < self._last_published:
            # Several workers: a newer frame finished first. Publishing this one now
            # would send the outputs back in time.
            self._stats.frame_dropped()
            return
        self._last_published = inferred.sequence
        header, image, raw, p, wanted = (inferred.header, inferred.image, inferred.raw,
                                         inferred.params, inferred.wanted)
        height, width = image.pixels.shape[:2]
        camera, template = self._camera_intrinsics(header, width, height, p)
        out_h, out_w = raw.shape
        output = camera if (out_w, out_h) == (width, height) else camera.scaled(out_w, out_h)
        depth = raw if self._metric else None
        if wanted.relative:
            self._pub_relative.publish(array_to_image(raw, "32FC1", header))
        if not self._metric and wanted.metric:
            depth = relative_to_metric(raw, p.relative_scale, p.relative_shift)
        if wanted.depth:
            self._pub_depth.publish(array_to_image(depth, "32FC1", header))
        if self._pub_info.get_subscription_count() > 0:
            self._pub_info.publish(intrinsics_to_camera_info(output, header, template))
        if wanted.colorized:
            self._pub_colorized.publish(
                array_to_image(self._colorize(depth, raw, p), "bgr8", header))
        if wanted.points:
            self._pub_points.publish(self._cloud(depth, output, image, header, p))

        end_to_end = None
        if _has_stamp(header):
            end_to_end = (self.get_clock().now() - Time.from_msg(header.stamp)).nanoseconds * 1e-9
        self._stats.frame_published(inferred.inference_s, end_to_end)

    def _camera_intrinsics(self, header: Header, width: int, height: int, p: NodeParams
                           ) -> tuple[Intrinsics, Optional[CameraInfo]]:
        """Calibration for this image, scaled to its size, else the FOV fallback.

        A calibration whose size is neither the image's nor a scaling of it is refused
        for this frame and the fallback used instead: the depth image does not depend
        on calibration, so dropping the frame would blind the robot over a cloud-only
        problem, and the republished CameraInfo then honestly carries the fallback.
        """
        match = self._calibrations.match(header.stamp)
        if match is not None and not calibration_fits(match.intrinsics, width, height):
            cal = match.intrinsics
            self._reject(REJECT_CAMERA_INFO_SIZE,
                         f"ignoring camera_info for {cal.width}x{cal.height}: the image is "
                         f"{width}x{height}, neither that size nor a scaling of it (another "
                         f"camera's CameraInfo?); using the {p.fallback_hfov_deg} degree "
                         "field-of-view fallback for this frame")
            self._calibration_source = (f"fallback: hfov {p.fallback_hfov_deg} deg "
                                        "(camera_info size mismatch)")
            return Intrinsics.from_fov(width, height, p.fallback_hfov_deg), None
        if match is None:
            self._calibration_source = f"fallback: hfov {p.fallback_hfov_deg} deg"
            self.get_logger().warning(
                f"no valid CameraInfo received yet; assuming a {p.fallback_hfov_deg} degree "
                "horizontal field of view (parameter fallback_hfov_deg) until one arrives",
                once=True)
            return Intrinsics.from_fov(width, height, p.fallback_hfov_deg), None
        self._calibration_source = ("camera_info" if match.exact
                                    else "camera_info (latest, stamp differs)")
        intrinsics = match.intrinsics
        if (intrinsics.width, intrinsics.height) != (width, height):
            self.get_logger().warning(
                f"camera_info is for {intrinsics.width}x{intrinsics.height} but images are "
                f"{width}x{height}; scaling the intrinsics", throttle_duration_sec=WARN_THROTTLE_S)
            intrinsics = intrinsics.scaled(width, height)
        return intrinsics, match.message

    def _colorize(self, depth: Optional[np.ndarray], relative: np.ndarray,
                  p: NodeParams) -> np.ndarray:
        if depth is not None:
            key = (p.colormap, p.colorize_min_depth, p.colorize_max_depth)
            colorizer = self._colorizer
            if colorizer is None or (colorizer.colormap, colorizer.min_depth,
                                     colorizer.max_depth) != key:
                colorizer = self._colorizer = Colorizer(*key)
            return colorizer(depth)
        # Relative inverse depth has no fixed unit, so only a per-frame range is meaningful.
        # Inverted so near stays at the colormap's low end, as for metric depth.
        finite = relative[np.isfinite(relative)]
        low = float(finite.min()) if finite.size else 0.0
        high = float(finite.max()) if finite.size else 1.0
        return Colorizer(p.colormap, low, max(high, low + 1e-6), invert=True)(relative)

    def _cloud(self, depth: np.ndarray, intrinsics: Intrinsics, image: DecodedImage,
               header: Header, p: NodeParams) -> PointCloud2:
        grid = self._grid
        if grid is None or grid.intrinsics != intrinsics or grid.stride != p.cloud_stride:
            grid = self._grid = RayGrid(intrinsics, p.cloud_stride)
        points = grid.points(depth, p.cloud_min_range, p.cloud_max_range)
        colors = None
        if p.cloud_color:
            bgr = image.pixels if image.order == "bgr" else image.pixels[..., ::-1]
            if bgr.shape[:2] != depth.shape:
                # Decoded pixels may be a strided view (mono8, rgba8); OpenCV wants them packed.
                bgr = cv2.resize(np.ascontiguousarray(bgr), (depth.shape[1], depth.shape[0]),
                                 interpolation=cv2.INTER_AREA)
            colors = bgr[::p.cloud_stride, ::p.cloud_stride]
        return self._cloud_builder.build(points, header, colors)

    # --- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        """Stop the inference and publisher threads; safe to call twice."""
        self._slot.close()
        self._inferred.close()
        deadline = time.monotonic() + WORKER_JOIN_S
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))

    def destroy_node(self) -> None:
        self.close()
        super().destroy_node()


def _rcl_reason(exc: Exception) -> str:
    """An rcl error without the ', at /path/file.c:NN' source locations it carries."""
    text = re.sub(r",? at \S+\.c:\d+", "", str(exc)).strip()
    return text.removeprefix("failed to initialize rcl: ")


def _fatal(text: str) -> int:
    rclpy.logging.get_logger(NODE_NAME).error(f"error: {text}")
    return 1


def main(args: Optional[list[str]] = None) -> int:
    """Console entry point; returns the process exit code (1: could not start or the
    model cannot run on the device)."""
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
        except (ParameterError, ModelLoadError) as exc:
            return _fatal(str(exc))
        if dds_note is not None:
            node.get_logger().info(dds_note)
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
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
