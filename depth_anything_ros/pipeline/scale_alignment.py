"""One camera's metric alignment: its recent references, its filtered fit, and how it fares.

The node and the bag tool hand references over as they arrive (``add_depth``,
``add_points``) and ask for each frame's metres in frame order (``metres``). A
reference is matched to a frame by stamp within ``reference_max_age``; a frame without
one, or whose fit is refused, keeps the last good fit, so the output never jumps to an
unaligned scale because a LiDAR scan was late. The ground source needs no messages: the
floor's depth follows from the camera's height and tilt.
"""

from __future__ import annotations

from collections import Counter, deque
import threading
from typing import Any, NamedTuple, Optional

import numpy as np

from depth_anything_ros.geometry.alignment import FitRefused, ScaleAligner, ScaleFit
from depth_anything_ros.geometry.intrinsics import Intrinsics
from depth_anything_ros.geometry.reference import (depth_image_samples, GroundPlane,
                                                   point_samples, pose_from_extrinsic,
                                                   ReferenceSamples, UnusableReference)
from depth_anything_ros.geometry.relative import relative_to_metres
from depth_anything_ros.pipeline.notes import (Note, REJECT_REFERENCE_TOO_OLD,
                                               WARN_ALIGNMENT_HELD, WARN_ALIGNMENT_NONE_YET,
                                               WARN_ALIGNMENT_REFUSED)
from depth_anything_ros.pipeline.parameters import NodeParams

# References kept for stamp matching: a LiDAR at 10-20 Hz against a camera at 30 Hz
# needs two or three; more cover a late camera, and the bag tool, which reads references
# up to a dozen frames before it finishes those frames.
REFERENCE_RING = 16
Pose = tuple[np.ndarray, np.ndarray]
Geometry = tuple[tuple[int, ...], Intrinsics]


class _Reference(NamedTuple):
    stamp_ns: int
    kind: str                      # "depth" or "points"
    payload: Any                   # metres (H, W), or (points (N, 3), pose or None)
    geometry: Optional[Geometry]   # what ``samples`` were made for
    samples: Optional[ReferenceSamples]


def _samples(kind: str, payload: Any, geometry: Geometry, p: NodeParams) -> ReferenceSamples:
    """Return a reference's points on the output grid; raises UnusableReference."""
    shape, intrinsics = geometry
    if kind == "depth":
        return depth_image_samples(payload, shape[0], shape[1])
    points, pose = payload
    rotation, translation = pose or pose_from_extrinsic(p.reference_extrinsic)
    return point_samples(points, rotation, translation, intrinsics)


class CameraAlignment:
    """References in from any thread, metres out in frame order from one thread."""

    def __init__(self, metric_model: bool, inverse: bool) -> None:
        """Align a model's output to references.

        ``inverse``: the relative output is inverse depth (V2), fitted affinely in inverse
        depth; otherwise it is depth (DA3) or metres, fitted by a scale alone.
        """
        self.metric_model = metric_model
        self.inverse = inverse
        self._references: deque[_Reference] = deque(maxlen=REFERENCE_RING)
        # The latest frame's output (shape, intrinsics): what arriving references are
        # checked and sampled against.
        self._geometry: Optional[Geometry] = None
        self._lock = threading.Lock()        # references come from another thread
        self._aligner: Optional[ScaleAligner] = None
        self._ground: Optional[GroundPlane] = None
        self._newest_frame_ns: Optional[int] = None
        self.last_fit_ns: Optional[int] = None
        self.fits = 0
        self.refused: Counter[str] = Counter()

    # --- references (any thread) -----------------------------------------------------

    def add_depth(self, depth: np.ndarray, stamp_ns: int, p: NodeParams) -> Optional[Note]:
        """Keep a depth reference (metres, NaN no data); a rejection note if it is too old."""
        return self._add(stamp_ns, "depth", depth, p)

    def add_points(self, points: np.ndarray, stamp_ns: int, p: NodeParams,
                   pose: Optional[Pose] = None) -> Optional[Note]:
        """Keep a cloud's (N, 3) points with their pose in the camera optical frame.

        ``pose`` (rotation, translation) comes from TF when the caller has it; None means
        the ``reference_extrinsic`` parameter's, read when the frame is aligned.
        """
        return self._add(stamp_ns, "points", (points, pose), p)

    def _add(self, stamp_ns: int, kind: str, payload: object, p: NodeParams) -> Optional[Note]:
        """Check a reference against the camera's latest output and keep it.

        Checked on arrival (once a frame has shown the output's size) rather than when a
        frame uses it, so every unusable reference is counted, not only the one that
        happens to be nearest a frame; the samples are kept for that frame.
        """
        newest = self._newest_frame_ns
        if newest is not None and newest - stamp_ns > p.reference_max_age * 1e9:
            return Note(REJECT_REFERENCE_TOO_OLD,
                        f"ignoring {kind} reference stamped {(newest - stamp_ns) * 1e-9:.3f} s "
                        f"before the newest frame, over reference_max_age "
                        f"({p.reference_max_age} s)")
        geometry = self._geometry
        samples = None
        if geometry is not None:
            try:
                samples = _samples(kind, payload, geometry, p)
            except UnusableReference as exc:
                return Note(exc.kind, f"ignoring {kind} reference: {exc}")
        with self._lock:
            self._references.append(_Reference(stamp_ns, kind, payload, geometry, samples))
        return None

    # --- per frame (one thread, frame order) -----------------------------------------

    def metres(self, raw: np.ndarray, stamp_ns: int, intrinsics: Intrinsics,
               p: NodeParams) -> tuple[Optional[np.ndarray], list[Note]]:
        """Return the frame's metric depth under the current fit, and what to tell the user.

        Before any fit a metric model keeps its own metres and a relative one has none
        (unless ``relative_scale`` gives a first guess).
        """
        notes: list[Note] = []
        self._newest_frame_ns = stamp_ns if self._newest_frame_ns is None else max(
            self._newest_frame_ns, stamp_ns)
        aligner = self._aligner_for(p)
        samples = self._frame_samples(stamp_ns, intrinsics, raw.shape, p, notes)
        if samples is not None:
            try:
                aligner.update(raw, samples, stamp_ns * 1e-9 if stamp_ns else None)
            except FitRefused as exc:
                self.refused[exc.reason] += 1
                notes.append(Note(WARN_ALIGNMENT_REFUSED,
                                  f"scale alignment refused a fit ({exc}); "
                                  f"{self._keeping()}"))
            else:
                self.fits += 1
                self.last_fit_ns = stamp_ns
        fit = aligner.current
        if fit is not None:
            return fit.depth(raw), notes
        if self.metric_model:
            return raw, notes
        if p.relative_scale > 0:
            return relative_to_metres(raw, p.relative_scale, p.relative_shift,
                                      self.inverse), notes
        notes.append(Note(WARN_ALIGNMENT_NONE_YET,
                          f"no metric fit yet (scale_source {p.scale_source}): publishing no "
                          "metric depth until the first reference aligns"))
        return None, notes

    def _keeping(self) -> str:
        if self.last_fit_ns is None:
            return "no good fit yet"
        return f"keeping the last good fit, {self.age_s():.2f} s old"

    def age_s(self) -> Optional[float]:
        """Return how long before the newest frame (by stamps) the last good fit was made."""
        if self.last_fit_ns is None or self._newest_frame_ns is None:
            return None
        return (self._newest_frame_ns - self.last_fit_ns) * 1e-9

    @property
    def current(self) -> Optional[ScaleFit]:
        return None if self._aligner is None else self._aligner.current

    def _aligner_for(self, p: NodeParams) -> ScaleAligner:
        settings = (p.alignment_min_points, p.alignment_max_residual,
                    p.alignment_time_constant, p.alignment_change_ratio)
        aligner = self._aligner
        if aligner is None or (aligner.min_points, aligner.max_residual,
                               aligner.time_constant_s, aligner.change_ratio) != settings:
            aligner = self._aligner = ScaleAligner(self.inverse, *settings)
        return aligner

    def _frame_samples(self, stamp_ns: int, intrinsics: Intrinsics, shape: tuple[int, ...],
                       p: NodeParams, notes: list[Note]) -> Optional[ReferenceSamples]:
        """Return the frame's reference points at the output size; None when it has none."""
        if p.scale_source == "ground":
            ground = self._ground
            setting = (p.camera_height, p.camera_pitch_deg, p.camera_roll_deg)
            if ground is None or (ground.camera_height, ground.pitch_deg,
                                  ground.roll_deg) != setting:
                ground = self._ground = GroundPlane(*setting)
            return ground.samples(intrinsics)
        geometry = self._geometry = (tuple(shape), intrinsics)
        reference = self._match(stamp_ns, p.reference_max_age)
        if reference is None:
            notes.append(Note(WARN_ALIGNMENT_HELD,
                              f"no {p.scale_source} reference within reference_max_age "
                              f"({p.reference_max_age} s) of the frame; {self._keeping()}"))
            return None
        if reference.geometry == geometry:
            return reference.samples
        try:
            return _samples(reference.kind, reference.payload, geometry, p)
        except UnusableReference as exc:
            notes.append(Note(exc.kind, f"ignoring {reference.kind} reference: {exc}; "
                                        f"{self._keeping()}"))
            return None

    def _match(self, stamp_ns: int, max_age_s: float) -> Optional[_Reference]:
        with self._lock:
            candidates = list(self._references)
        if not candidates:
            return None
        best = min(candidates, key=lambda ref: abs(ref.stamp_ns - stamp_ns))
        return None if abs(best.stamp_ns - stamp_ns) > max_age_s * 1e9 else best

    def status(self, p: NodeParams) -> dict[str, str]:
        """Return what /diagnostics shows about the alignment."""
        fit = self.current
        age = self.age_s()
        values = {"scale source": p.scale_source,
                  "alignment fits": str(self.fits),
                  "alignment refused": ", ".join(f"{k} {n}" for k, n in sorted(
                      self.refused.items())) or "0",
                  "alignment fit age (s)": "none yet" if age is None else f"{age:.2f}"}
        if fit is not None:
            values.update({"alignment scale": f"{fit.scale:.6g}",
                           "alignment shift": f"{fit.shift:.6g}",
                           "alignment inliers": str(fit.inliers),
                           "alignment residual": f"{fit.residual:.4f}"})
        return values
