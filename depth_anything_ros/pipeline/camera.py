"""One camera's per-frame processing, without ROS: decoded image + calibration in, arrays out.

The node, the standalone CLI and the benchmarks all run frames through this object, so
what one of them computes for a frame is what the others would: which calibration an
image gets (matched by stamp, scaled to its size, or the field-of-view fallback),
rectification, the network call, temporal smoothing, metres (the model's own, the
``scale_source`` alignment, or ``relative_scale``), the colorized preview, flying-pixel
removal and the organized point grid, in that order.
The caller keeps what is specific to it (messages, threads, logging, counters) and gets
back, with the arrays, every rejection and warning the frame produced, to count and
report its own way.

State that belongs to one camera lives here: recent calibrations, the order of its
stamps, the temporal filter's history, the metric alignment, and caches that only change
with the camera (the rectification maps, the ray grid, the colour table). ``infer`` writes
no state (the calibration ring is locked; the rectification cache is rebuilt by value, so
a race only costs a rebuild), so any number of inference lanes may call it at once; what
it found out travels with its ``NetworkOutput``. ``finish`` keeps history and is meant for
one thread, in frame order (``pipeline.runner``'s finisher).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional

import cv2
import numpy as np

from depth_anything_ros.geometry.calibration import (calibration_fits, CameraCalibration,
                                                     scaled_calibration)
from depth_anything_ros.geometry.colorize import Colorizer
from depth_anything_ros.geometry.confidence import drop_least_confident
from depth_anything_ros.geometry.flying_pixels import FlyingPixelFilter
from depth_anything_ros.geometry.intrinsics import Intrinsics
from depth_anything_ros.geometry.rays import RayGrid
from depth_anything_ros.geometry.rectify import (needs_rectification, rectified_calibration,
                                                 rectified_intrinsics, Rectifier)
from depth_anything_ros.geometry.relative import relative_to_metres
from depth_anything_ros.geometry.temporal import TemporalFilter
from depth_anything_ros.inference.engine import DepthEngine
from depth_anything_ros.inference.focal import focal_depth_factor
from depth_anything_ros.inference.metadata import (CONFIDENCE, FOCAL_DEPTH, RELATIVE_INVERSE_DEPTH,
                                                   SKY)
from depth_anything_ros.pipeline.calibration_ring import CalibrationRing
from depth_anything_ros.pipeline.messages.image_input import DecodedImage
from depth_anything_ros.pipeline.notes import (Note, REJECT_CAMERA_INFO_INVALID,
                                               REJECT_CAMERA_INFO_SIZE, WARN_CALIBRATION_SCALED,
                                               WARN_NO_CALIBRATION, WARN_NOT_RECTIFYING)
from depth_anything_ros.pipeline.outputs import OUTPUT_KEYS
from depth_anything_ros.pipeline.parameters import NodeParams
from depth_anything_ros.pipeline.scale_alignment import CameraAlignment
from depth_anything_ros.pipeline.stamp_order import StampOrder, StampVerdict

# Enough calibrations to pair each of the last few frames with its own.
CALIBRATION_RING = 16


@dataclass(frozen=True)
class Wanted:
    """Outputs to compute, one field per ``outputs.OUTPUTS`` key.

    The node asks only for those with a subscriber, the bag tool for those it writes.
    """

    depth: bool = True
    points: bool = True
    colorized: bool = True
    relative: bool = True
    camera_info: bool = True
    confidence: bool = True

    @property
    def anything(self) -> bool:
        return any(getattr(self, key) for key in OUTPUT_KEYS)


def wanted_outputs(pipeline: "CameraPipeline", p: NodeParams,
                   taken: Callable[[str], bool]) -> Wanted:
    """Return what to compute: the outputs ``taken`` says someone takes, metres permitting.

    The node's sink asks its publishers (subscribed?), the bag tool's its topic list.
    """
    metres = pipeline.has_metres(p)
    return Wanted(**{key: taken(key) and (metres or key not in ("depth", "points"))
                     for key in OUTPUT_KEYS})


class NetworkOutput(NamedTuple):
    """What ``infer`` hands to ``finish``: the network's answer and the camera it saw."""

    raw: np.ndarray                          # at the output size: metres or relative
    sky: Optional[np.ndarray]                # bool, True = sky; models with a sky output
    confidence: Optional[np.ndarray]         # models with a confidence output
    image: DecodedImage                      # as the network saw it (rectified when it was)
    camera: Intrinsics                       # of ``image``
    calibration: Optional[CameraCalibration]  # what ``camera`` came from, None: fallback
    calibration_source: str
    notes: tuple[Note, ...]


@dataclass(frozen=True)
class FrameOutputs:
    """One frame's results, at the output size (camera or network, ``output_resolution``).

    ``depth`` is metres (NaN invalid) whenever metres exist (a metric model, a relative
    one with ``relative_scale`` > 0, or one aligned by ``scale_source`` once a first fit
    exists) and depth or points were wanted.
    ``relative`` is the relative model's raw output (V2: inverse depth, DA3: depth).
    ``confidence`` is the model's own per-pixel confidence, where it has one. Sky, where
    the model marks it and ``sky_mask`` is on, is +Inf in ``depth``, black in ``colorized``
    and absent from ``points``. ``points`` (and
    ``depth`` when flying pixels are removed from it) are the pipeline's own buffers,
    overwritten by the next frame: convert or copy them first.
    """

    depth: Optional[np.ndarray]
    relative: Optional[np.ndarray]
    colorized: Optional[np.ndarray]
    points: Optional[np.ndarray]
    colors: Optional[np.ndarray]
    confidence: Optional[np.ndarray]
    intrinsics: Intrinsics
    calibration: Optional[CameraCalibration]   # what ``intrinsics`` came from, None: fallback
    calibration_source: str
    notes: tuple[Note, ...]

    def camera_info(self) -> tuple[Intrinsics, Optional[CameraCalibration]]:
        """Return what the republished CameraInfo is made of: the output's camera, its template."""
        return self.intrinsics, self.calibration


class CameraPipeline:
    """Frames of one camera through one (possibly shared) engine."""

    def __init__(self, engine: DepthEngine, calibration_capacity: int = CALIBRATION_RING) -> None:
        self.engine = engine
        meta = engine.metadata
        self.metric_model = meta.is_metric
        # What the outputs mean, from the IR's metadata: the steps below follow it.
        self._focal = meta.depth_meaning == FOCAL_DEPTH
        self._inverse = meta.depth_meaning == RELATIVE_INVERSE_DEPTH
        self._sky = meta.output_named_for(SKY)
        self._confidence = meta.output_named_for(CONFIDENCE)
        self.calibrations = CalibrationRing(calibration_capacity)
        self._stamps = StampOrder()
        self._grid: Optional[RayGrid] = None
        self._colorizer: Optional[Colorizer] = None
        self._rectifier = Rectifier()
        self._flying: Optional[FlyingPixelFilter] = None
        self._filtered: Optional[np.ndarray] = None   # depth with flying pixels as NaN
        self._temporal: Optional[TemporalFilter] = None
        self._fallback_announced = False   # finish's: the no-calibration note, said once
        self.alignment = CameraAlignment(self.metric_model, self._inverse)

    # --- inputs ----------------------------------------------------------------------

    def add_calibration(self, calibration: CameraCalibration, stamp_ns: int) -> Optional[Note]:
        """Keep a calibration for frames stamped ``stamp_ns``; a rejection note if unusable."""
        try:
            self.calibrations.add(calibration, stamp_ns)
        except ValueError as exc:
            return Note(REJECT_CAMERA_INFO_INVALID, f"ignoring camera_info: {exc}")
        return None

    def check_stamp(self, stamp_ns: int) -> tuple[StampVerdict, float]:
        """Whether a frame stamped ``stamp_ns`` is in order (see StampOrder).

        Also by how many seconds it goes back. Call once per received frame, in arrival
        order.
        """
        return self._stamps.check(stamp_ns)

    def absent_outputs(self) -> dict[str, str]:
        """Return the outputs this model never has, each with the reason."""
        absent = {}
        if self.metric_model:
            absent["relative"] = "the model is metric"
        if self._confidence is None:
            absent["confidence"] = "the model has no confidence output"
        return absent

    def has_metres(self, p: NodeParams) -> bool:
        return self.metric_model or p.relative_scale > 0 or p.scale_source != "none"

    def output_size(self, image_shape: tuple[int, ...], p: NodeParams) -> tuple[int, int]:
        if p.output_resolution == "network":
            return self.engine.network_size
        return int(image_shape[0]), int(image_shape[1])

    # --- per frame -------------------------------------------------------------------

    def infer(self, image: DecodedImage, stamp_ns: int, p: NodeParams,
              lane: int = 0) -> NetworkOutput:
        """Pick the frame's calibration, rectify the image if it is distorted, run the network.

        The output is at the output size: metres, or the relative output. A model that
        takes metres from the focal length (DA3 Metric) gets them here, from this frame's
        intrinsics at the network input: a rectified frame's rectified ones, else its
        matched CameraInfo's, else the field-of-view fallback's. Every later step works in
        the camera the network saw, so a rectified frame's outputs all describe the
        rectified camera.
        """
        notes: list[Note] = []
        height, width = image.pixels.shape[:2]
        camera, calibration, source = self._camera_intrinsics(stamp_ns, width, height, p, notes)
        if calibration is not None and p.rectify == "auto" and needs_rectification(calibration):
            image, camera, calibration = self._rectify(image, camera, calibration, notes)
        outputs = self.engine.infer_all(image.pixels, image.order,
                                        self.output_size(image.pixels.shape, p), lane)
        raw = outputs[self.engine.output_names[0]]
        if self._focal:
            raw *= np.float32(focal_depth_factor(
                camera.fx, camera.fy, image.pixels.shape[:2], self.engine.network_size,
                self.engine.metadata.focal_reference))
        sky = None
        if self._sky is not None:
            sky = outputs[self._sky] >= np.float32(self.engine.metadata.sky_threshold)
        confidence = None if self._confidence is None else outputs[self._confidence]
        return NetworkOutput(raw, sky, confidence, image, camera, calibration, source,
                             tuple(notes))

    def finish(self, net: NetworkOutput, stamp_ns: int, p: NodeParams,
               wanted: Wanted = Wanted()) -> FrameOutputs:
        """Do everything after the network for one frame, in frame order."""
        raw = self._smooth(net, stamp_ns, p) if p.temporal_smoothing else net.raw
        out_h, out_w = raw.shape
        camera = net.camera
        output = camera if (out_w, out_h) == (camera.width, camera.height) else camera.scaled(
            out_w, out_h)
        depth = None
        notes = self._announce_fallback_once(net.notes)
        if p.scale_source != "none":
            # Every frame, watched or not: the fit's filter needs each reference in turn.
            depth, aligned_notes = self.alignment.metres(raw, stamp_ns, output, p)
            notes += tuple(aligned_notes)
        elif self.has_metres(p) and (wanted.depth or wanted.points or wanted.colorized):
            depth = raw if self.metric_model else relative_to_metres(
                raw, p.relative_scale, p.relative_shift, self._inverse)
        sky = net.sky if p.sky_mask else None
        if depth is not None and sky is not None:
            # Sky has no depth to clean or to place in the cloud: NaN for those steps.
            depth = np.where(sky, np.float32(np.nan), depth)
        cleaned = depth
        if depth is not None and p.flying_pixel_filter and (
                wanted.points or (wanted.depth and p.flying_pixels_in_depth)):
            cleaned = self._without_flying_pixels(depth, output, p)
        published = cleaned if p.flying_pixels_in_depth else depth
        if published is not None and sky is not None:
            published = np.where(sky, np.float32(np.inf), published)  # REP 117: nothing in range
        points = colors = None
        if wanted.points and cleaned is not None:
            points, colors = self._points(cleaned, output, net.image, p)
            if net.confidence is not None and p.confidence_drop_fraction > 0:
                drop_least_confident(points, net.confidence[::p.cloud_stride, ::p.cloud_stride],
                                     p.confidence_drop_fraction)
        return FrameOutputs(
            depth=published if (wanted.depth or wanted.points) else None,
            relative=raw if wanted.relative and not self.metric_model else None,
            colorized=self._colorize(published, raw, sky, p) if wanted.colorized else None,
            points=points, colors=colors,
            confidence=net.confidence if wanted.confidence else None, intrinsics=output,
            calibration=net.calibration, calibration_source=net.calibration_source,
            notes=notes)

    def _announce_fallback_once(self, notes: tuple[Note, ...]) -> tuple[Note, ...]:
        """Keep the 'no CameraInfo yet' note of the first frame that uses the fallback only."""
        if not any(note.key == WARN_NO_CALIBRATION for note in notes):
            return notes
        if self._fallback_announced:
            return tuple(note for note in notes if note.key != WARN_NO_CALIBRATION)
        self._fallback_announced = True
        return notes

    def _rectify(self, image: DecodedImage, camera: Intrinsics, calibration: CameraCalibration,
                 notes: list[Note]) -> tuple[DecodedImage, Intrinsics,
                                             Optional[CameraCalibration]]:
        """Return the image in the rectified camera, as image_proc's rectify node gives it.

        A calibration it cannot apply (an unknown distortion model, binning or a ROI)
        leaves the frame unrectified: depth still comes out, only the cloud's edges bend,
        which is better than no depth at all; the note says so.
        """
        height, width = image.pixels.shape[:2]
        scaled = scaled_calibration(calibration, width, height)
        try:
            pixels = self._rectifier.rectify(image.pixels, scaled)
        except ValueError as exc:
            notes.append(Note(WARN_NOT_RECTIFYING,
                              f"not rectifying: {exc}; processing the image as it comes"))
            return image, camera, calibration
        return (DecodedImage(pixels, image.order), rectified_intrinsics(scaled),
                rectified_calibration(scaled))

    def _smooth(self, net: NetworkOutput, stamp_ns: int, p: NodeParams) -> np.ndarray:
        settings = (p.temporal_time_constant, p.temporal_change_ratio,
                    p.temporal_motion_threshold)
        smoother = self._temporal
        if smoother is None or (smoother.time_constant_s, smoother.change_ratio,
                                smoother.motion_threshold) != settings:
            smoother = self._temporal = TemporalFilter(*settings)
        pixels = net.image.pixels
        if not pixels.flags.c_contiguous:  # a strided view (mono8, rgba8): OpenCV needs packed
            pixels = np.ascontiguousarray(pixels)
        return smoother(net.raw, pixels, stamp_ns * 1e-9 if stamp_ns else None)

    def _without_flying_pixels(self, depth: np.ndarray, intrinsics: Intrinsics,
                               p: NodeParams) -> np.ndarray:
        flying = self._flying
        if flying is None or flying.min_angle_deg != p.flying_pixel_min_angle_deg:
            flying = self._flying = FlyingPixelFilter(p.flying_pixel_min_angle_deg)
        if self._filtered is None or self._filtered.shape != depth.shape:
            self._filtered = np.empty(depth.shape, np.float32)
        return flying.remove(depth, intrinsics, self._filtered)

    def _camera_intrinsics(self, stamp_ns: int, width: int, height: int, p: NodeParams,
                           notes: list[Note]) -> tuple[Intrinsics, Optional[CameraCalibration],
                                                       str]:
        """Calibration for this image, scaled to its size, else the FOV fallback; its source.

        A calibration whose size is neither the image's nor a scaling of it is refused
        for this frame and the fallback used instead: the depth image does not depend
        on calibration, so dropping the frame would blind the robot over a cloud-only
        problem, and the republished CameraInfo then honestly carries the fallback.
        """
        match = self.calibrations.match(stamp_ns)
        fallback = f"fallback: hfov {p.fallback_hfov_deg} deg"
        if match is not None and not calibration_fits(match.intrinsics, width, height):
            cal = match.intrinsics
            notes.append(Note(
                REJECT_CAMERA_INFO_SIZE,
                f"ignoring camera_info for {cal.width}x{cal.height}: the image is "
                f"{width}x{height}, neither that size nor a scaling of it (another camera's "
                f"CameraInfo?); using the {p.fallback_hfov_deg} degree field-of-view "
                "fallback for this frame"))
            return (Intrinsics.from_fov(width, height, p.fallback_hfov_deg), None,
                    f"{fallback} (camera_info size mismatch)")
        if match is None:
            notes.append(Note(
                WARN_NO_CALIBRATION,
                f"no valid CameraInfo received yet; assuming a {p.fallback_hfov_deg} "
                "degree horizontal field of view (parameter fallback_hfov_deg) until "
                "one arrives"))
            return Intrinsics.from_fov(width, height, p.fallback_hfov_deg), None, fallback
        source = "camera_info" if match.exact else "camera_info (latest, stamp differs)"
        intrinsics = match.intrinsics
        if (intrinsics.width, intrinsics.height) != (width, height):
            notes.append(Note(
                WARN_CALIBRATION_SCALED,
                f"camera_info is for {intrinsics.width}x{intrinsics.height} but images are "
                f"{width}x{height}; scaling the intrinsics"))
            intrinsics = intrinsics.scaled(width, height)
        return intrinsics, match.calibration, source

    def _colorize(self, depth: Optional[np.ndarray], relative: np.ndarray,
                  sky: Optional[np.ndarray], p: NodeParams) -> np.ndarray:
        if depth is not None:
            key = (p.colormap, p.colorize_min_depth, p.colorize_max_depth)
            colorizer = self._colorizer
            if colorizer is None or (colorizer.colormap, colorizer.min_depth,
                                     colorizer.max_depth) != key:
                colorizer = self._colorizer = Colorizer(*key)
            return colorizer(depth)
        # A relative output has no fixed unit, so only a per-frame range is meaningful.
        # Inverse depth is inverted so near stays at the colormap's low end, as for metres.
        if sky is not None:
            relative = np.where(sky, np.float32(np.nan), relative)  # black, out of the range
        finite = relative[np.isfinite(relative)]
        low = float(finite.min()) if finite.size else 0.0
        high = float(finite.max()) if finite.size else 1.0
        return Colorizer(p.colormap, low, max(high, low + 1e-6), invert=self._inverse)(relative)

    def _points(self, depth: np.ndarray, intrinsics: Intrinsics, image: DecodedImage,
                p: NodeParams) -> tuple[np.ndarray, Optional[np.ndarray]]:
        grid = self._grid
        if grid is None or grid.intrinsics != intrinsics or grid.stride != p.cloud_stride:
            grid = self._grid = RayGrid(intrinsics, p.cloud_stride)
        points = grid.points(depth, p.cloud_min_range, p.cloud_max_range)
        if not p.cloud_color:
            return points, None
        bgr = image.pixels if image.order == "bgr" else image.pixels[..., ::-1]
        if bgr.shape[:2] != depth.shape:
            # Decoded pixels may be a strided view (mono8, rgba8); OpenCV wants them packed.
            bgr = cv2.resize(np.ascontiguousarray(bgr), (depth.shape[1], depth.shape[0]),
                             interpolation=cv2.INTER_AREA)
        return points, bgr[::p.cloud_stride, ::p.cloud_stride]
