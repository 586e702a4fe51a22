"""Rate, latency and outcome bookkeeping for one camera's frames.

Counters are updated from several threads (the runner's intake, its inference lanes and
its finisher) and read by a timer, hence the lock. What describes the published frames
(their calibration source) is recorded with the count of published frames, under the
same lock, so a report never pairs one frame's count with another frame's description.

Every image received ends up in exactly one total: published, dropped (a newer frame
replaced it), skipped (no subscriber), failed (processing raised) or rejected under an
image reason. So once the node is idle, received == the sum of those, which lets anyone
check from /diagnostics alone that nothing went missing. (The camera_info_* reasons
count refused CameraInfo messages and frames published with the fallback calibration
instead of theirs, the reference_* reasons refused metric references; they are outside
that sum.)
"""

from __future__ import annotations

from dataclasses import dataclass
import threading
import time
from typing import Callable, Iterable, Mapping, Optional


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
    calibration_source: str               # of the last published frame


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
        """``rejection_kinds`` are reported from the start, at 0.

        That way dashboards and tests see a stable set of keys; other kinds appear when
        first counted.
        """
        self._clock = clock
        self._lock = threading.Lock()
        self._window_start = clock()
        self._received = self._published = self._dropped = self._skipped = 0
        self._failed = self._rejected = self._stamp_restarts = 0
        self._by_kind = dict.fromkeys(rejection_kinds, 0)
        self._last_rejection = ""
        self._calibration_source = "none yet"
        self._window_received = self._window_published = self._window_rejected = 0
        self._inference = _LatencyWindow()
        self._end_to_end = _LatencyWindow()

    def frame_received(self) -> None:
        with self._lock:
            self._received += 1
            self._window_received += 1

    def frame_dropped(self) -> None:
        """Count a received frame that was overwritten before the worker got to it."""
        with self._lock:
            self._dropped += 1

    def frame_skipped(self) -> None:
        """Count a frame not processed because no output had a subscriber."""
        with self._lock:
            self._skipped += 1

    def frame_published(self, inference_s: float, end_to_end_s: Optional[float],
                        calibration_source: str = "") -> None:
        """``end_to_end_s`` None: the image had no stamp, so its age is unknown."""
        with self._lock:
            if calibration_source:
                self._calibration_source = calibration_source
            self._published += 1
            self._window_published += 1
            self._inference.add(inference_s)
            if end_to_end_s is not None:
                self._end_to_end.add(end_to_end_s)

    def frame_failed(self) -> None:
        """Count a frame whose processing raised; the node logged why and carried on."""
        with self._lock:
            self._failed += 1

    def message_rejected(self, kind: str, reason: str) -> None:
        """Count an image or CameraInfo that was refused; ``kind`` names the broken rule."""
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
                calibration_source=self._calibration_source,
            )
            self._window_start = now
            self._window_received = self._window_published = self._window_rejected = 0
            self._inference = _LatencyWindow()
            self._end_to_end = _LatencyWindow()
            return snap


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
        """None: stay quiet.

        Else log now; the number is how many were held back since the previous line for
        ``key``.
        """
        with self._lock:
            now = self._clock()
            last = self._last.get(key)
            if last is not None and now - last < self._period_s:
                self._held[key] = self._held.get(key, 0) + 1
                return None
            self._last[key] = now
            return self._held.pop(key, 0)
