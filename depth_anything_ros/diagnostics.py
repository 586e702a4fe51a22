"""Rate and latency bookkeeping for the node, reported as diagnostic_msgs/DiagnosticArray.

diagnostic_updater is not available as a Python package outside a ROS distro, so this
module builds the ``/diagnostics`` message itself: one DiagnosticStatus per report,
named ``<node>: <task>`` as diagnostic_updater would, so diagnostic_aggregator and
rqt_robot_monitor group it the usual way.

Counters are updated from two threads (subscription callbacks on the executor, the
inference worker) and read by a timer, hence the lock.

Every image the node receives ends up in exactly one total: published, dropped (a newer
frame replaced it), skipped (no subscriber), failed (processing raised) or rejected under
an image reason. So once the node is idle, received == the sum of those, which lets
anyone check from /diagnostics alone that nothing went missing. (The camera_info_*
reasons count refused CameraInfo messages and frames published with the fallback
calibration instead of theirs; they are outside that sum.)
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Optional

from builtin_interfaces.msg import Time as TimeMsg
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue


@dataclass(frozen=True)
class LatencySummary:
    """Seconds over one reporting period; all zero when nothing was measured."""

    count: int = 0
    mean_s: float = 0.0
    max_s: float = 0.0


@dataclass(frozen=True)
class StatsSnapshot:
    period_s: float
    input_hz: float
    output_hz: float
    inference: LatencySummary
    end_to_end: LatencySummary
    received_total: int
    published_total: int
    dropped_total: int
    skipped_total: int
    failed_total: int
    rejected_total: int
    rejected_in_period: int
    last_rejection: str
    rejected_by_kind: Mapping[str, int]   # totals; every kind named at construction is present
    stamp_restarts: int


class _LatencyWindow:
    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.max = 0.0

    def add(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        self.max = max(self.max, seconds)

    def summary(self) -> LatencySummary:
        if not self.count:
            return LatencySummary()
        return LatencySummary(self.count, self.total / self.count, self.max)


class ProcessingStats:
    """Totals since start plus a window that each ``snapshot`` closes and restarts.

    Rates are events in the window divided by the window's real length, so a late
    timer tick does not inflate them.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 rejection_kinds: Iterable[str] = ()) -> None:
        """``rejection_kinds`` are reported from the start, at 0, so dashboards and tests
        see a stable set of keys; other kinds appear when first counted."""
        self._clock = clock
        self._lock = threading.Lock()
        self._window_start = clock()
        self._received = self._published = self._dropped = self._skipped = 0
        self._failed = self._rejected = self._stamp_restarts = 0
        self._by_kind = {kind: 0 for kind in rejection_kinds}
        self._last_rejection = ""
        self._window_received = self._window_published = self._window_rejected = 0
        self._inference = _LatencyWindow()
        self._end_to_end = _LatencyWindow()

    def frame_received(self) -> None:
        with self._lock:
            self._received += 1
            self._window_received += 1

    def frame_dropped(self) -> None:
        """A received frame was overwritten before the worker got to it."""
        with self._lock:
            self._dropped += 1

    def frame_skipped(self) -> None:
        """A frame was not processed because no output had a subscriber."""
        with self._lock:
            self._skipped += 1

    def frame_published(self, inference_s: float, end_to_end_s: Optional[float]) -> None:
        """``end_to_end_s`` None: the image had no stamp, so its age is unknown."""
        with self._lock:
            self._published += 1
            self._window_published += 1
            self._inference.add(inference_s)
            if end_to_end_s is not None:
                self._end_to_end.add(end_to_end_s)

    def frame_failed(self) -> None:
        """Processing a frame raised; the node logged why and carried on."""
        with self._lock:
            self._failed += 1

    def message_rejected(self, kind: str, reason: str) -> None:
        """An image or CameraInfo was refused; ``kind`` names the broken rule."""
        with self._lock:
            self._rejected += 1
            self._window_rejected += 1
            self._by_kind[kind] = self._by_kind.get(kind, 0) + 1
            self._last_rejection = reason

    def stamp_restart(self) -> None:
        """Image stamps jumped back far enough to mean the source started over."""
        with self._lock:
            self._stamp_restarts += 1

    def snapshot(self) -> StatsSnapshot:
        """Summarise the window since the previous snapshot and start a new one."""
        with self._lock:
            now = self._clock()
            period = max(now - self._window_start, 1e-9)
            snap = StatsSnapshot(
                period_s=period,
                input_hz=self._window_received / period,
                output_hz=self._window_published / period,
                inference=self._inference.summary(),
                end_to_end=self._end_to_end.summary(),
                received_total=self._received,
                published_total=self._published,
                dropped_total=self._dropped,
                skipped_total=self._skipped,
                failed_total=self._failed,
                rejected_total=self._rejected,
                rejected_in_period=self._window_rejected,
                last_rejection=self._last_rejection,
                rejected_by_kind=dict(self._by_kind),
                stamp_restarts=self._stamp_restarts,
            )
            self._window_start = now
            self._window_received = self._window_published = self._window_rejected = 0
            self._inference = _LatencyWindow()
            self._end_to_end = _LatencyWindow()
            return snap


# Keys of the reported values; tests and dashboards rely on them, keep them stable.
KEY_INPUT_HZ = "input rate (Hz)"
KEY_OUTPUT_HZ = "output rate (Hz)"
KEY_INFERENCE_MEAN = "inference latency mean (ms)"
KEY_INFERENCE_MAX = "inference latency max (ms)"
KEY_E2E_MEAN = "end-to-end latency mean (ms)"
KEY_E2E_MAX = "end-to-end latency max (ms)"
KEY_RECEIVED = "frames received"
KEY_PUBLISHED = "frames published"
KEY_DROPPED = "frames dropped"
KEY_SKIPPED = "frames skipped (no subscribers)"
KEY_FAILED = "frames failed"
KEY_REJECTED = "messages rejected"
KEY_LAST_REJECTION = "last rejection"
KEY_STAMP_RESTARTS = "stamp restarts"


def rejected_key(kind: str) -> str:
    """Key of the per-reason rejection total, e.g. 'rejected: data_length'."""
    return f"rejected: {kind}"


def status_from_snapshot(snap: StatsSnapshot, name: str, hardware_id: str,
                         extra: Mapping[str, str] | None = None) -> DiagnosticStatus:
    """WARN when input stopped or messages were rejected in this period, else OK.

    Dropped frames are not a warning: dropping is how the node keeps latency low
    when the camera is faster than inference.
    """
    if snap.rejected_in_period:
        level = DiagnosticStatus.WARN
        message = f"rejected {snap.rejected_in_period} message(s): {snap.last_rejection}"
    elif snap.input_hz == 0.0:
        level = DiagnosticStatus.WARN
        message = "no input images"
    else:
        level = DiagnosticStatus.OK
        message = "running" if snap.output_hz > 0.0 else "idle: no output has a subscriber"
    values = {
        KEY_INPUT_HZ: f"{snap.input_hz:.2f}",
        KEY_OUTPUT_HZ: f"{snap.output_hz:.2f}",
        KEY_INFERENCE_MEAN: f"{snap.inference.mean_s * 1e3:.1f}",
        KEY_INFERENCE_MAX: f"{snap.inference.max_s * 1e3:.1f}",
        KEY_E2E_MEAN: f"{snap.end_to_end.mean_s * 1e3:.1f}",
        KEY_E2E_MAX: f"{snap.end_to_end.max_s * 1e3:.1f}",
        KEY_RECEIVED: str(snap.received_total),
        KEY_PUBLISHED: str(snap.published_total),
        KEY_DROPPED: str(snap.dropped_total),
        KEY_SKIPPED: str(snap.skipped_total),
        KEY_FAILED: str(snap.failed_total),
        KEY_REJECTED: str(snap.rejected_total),
        KEY_LAST_REJECTION: snap.last_rejection,
        KEY_STAMP_RESTARTS: str(snap.stamp_restarts),
    }
    values.update({rejected_key(kind): str(n) for kind, n in snap.rejected_by_kind.items()})
    values.update(extra or {})
    return DiagnosticStatus(
        level=level, name=name, message=message, hardware_id=hardware_id,
        values=[KeyValue(key=k, value=v) for k, v in values.items()])


def diagnostic_array(statuses: Iterable[DiagnosticStatus], stamp: TimeMsg) -> DiagnosticArray:
    msg = DiagnosticArray()
    msg.header.stamp = stamp
    msg.status = list(statuses)
    return msg


class KeyedRateLimit:
    """At most one log line per key and period, saying how many it held back.

    rclpy's ``throttle_duration_sec`` throttles per call site, so one noisy reason (say a
    camera sending the wrong encoding at 30 Hz) would hide every other reason logged
    from the same line. Keyed by reason, each kind of problem gets its own line.
    """

    def __init__(self, period_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._period_s = period_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def allow(self, key: str) -> Optional[int]:
        """None: stay quiet. Else log now; the number is how many were held back since
        the previous line for ``key``."""
        with self._lock:
            now = self._clock()
            last = self._last.get(key)
            if last is not None and now - last < self._period_s:
                self._held[key] = self._held.get(key, 0) + 1
                return None
            self._last[key] = now
            return self._held.pop(key, 0)
