"""ProcessingStats windows and the DiagnosticStatus built from them."""

import threading

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticStatus
import pytest

from depth_anything_ros.pipeline import stats as frame_stats
from depth_anything_ros.ros import diagnostics as diag


class ManualClock:

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def values(status: DiagnosticStatus) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def test_rates_and_latencies_cover_exactly_one_window():
    clock = ManualClock()
    stats = frame_stats.ProcessingStats(clock)
    for _ in range(10):
        stats.frame_received()
    stats.frame_dropped()
    stats.frame_dropped()
    stats.frame_skipped()
    stats.frame_published(0.020, 0.050)
    stats.frame_published(0.040, None)  # unstamped image: no end-to-end sample
    clock.now += 2.0
    snap = stats.snapshot()
    assert snap.period_s == pytest.approx(2.0)
    assert snap.input_hz == pytest.approx(5.0)
    assert snap.output_hz == pytest.approx(1.0)
    assert (snap.inference.count, snap.inference.mean_s, snap.inference.max_s) == (
        2, pytest.approx(0.030), pytest.approx(0.040))
    assert (snap.end_to_end.count, snap.end_to_end.mean_s) == (1, pytest.approx(0.050))
    assert (snap.received_total, snap.published_total, snap.dropped_total,
            snap.skipped_total) == (10, 2, 2, 1)

    # The next window starts empty; totals carry on.
    clock.now += 0.5
    stats.frame_received()
    snap = stats.snapshot()
    assert snap.input_hz == pytest.approx(2.0)
    assert snap.output_hz == 0.0 and snap.inference.count == 0
    assert snap.received_total == 11 and snap.published_total == 2


def test_status_level_follows_input_and_rejections():
    clock = ManualClock()
    stats = frame_stats.ProcessingStats(clock)
    clock.now += 1.0
    idle = diag.status_from_snapshot(stats.snapshot(), "cam/depth_anything: depth", "CPU")
    assert idle.level == DiagnosticStatus.WARN and idle.message == "no input images"

    stats.frame_received()
    stats.frame_published(0.01, 0.02)
    clock.now += 1.0
    ok = diag.status_from_snapshot(stats.snapshot(), "n", "CPU", {"model type": "metric"})
    assert ok.level == DiagnosticStatus.OK
    assert values(ok)["model type"] == "metric"
    assert values(ok)[diag.KEY_INFERENCE_MEAN] == "10.0"
    assert values(ok)[diag.KEY_E2E_MAX] == "20.0"

    stats.frame_received()
    stats.message_rejected("encoding", "image: unsupported image encoding '8UC7'")
    clock.now += 1.0
    warn = diag.status_from_snapshot(stats.snapshot(), "n", "GPU")
    assert warn.level == DiagnosticStatus.WARN
    assert "8UC7" in warn.message and warn.hardware_id == "GPU"
    assert values(warn)[diag.KEY_REJECTED] == "1"

    # A rejection is reported in its own period only; the total stays.
    stats.frame_received()
    clock.now += 1.0
    later = diag.status_from_snapshot(stats.snapshot(), "n", "GPU")
    assert later.level == DiagnosticStatus.OK
    assert values(later)[diag.KEY_REJECTED] == "1"


def test_a_frame_counted_during_a_snapshot_lands_in_one_window_with_its_calibration():
    """The lock makes a snapshot atomic against counting from another thread.

    The snapshot reads the clock while it holds the lock; this clock publishes a frame
    from a second thread at that moment. With the lock, that thread waits, so its frame
    is in the next window and the calibration source reported is the one published with
    the frames counted; without it (a no-op lock) the frame is counted in the total but
    in neither window, and the report pairs the old count with the new frame's source.
    """
    clock = ManualClock()
    armed: list[threading.Thread] = []

    def clock_that_races() -> float:
        if armed:
            racer = armed.pop()
            racer.start()
            racer.join(0.5)   # with the lock, blocked until the snapshot is done
        return clock()

    stats = frame_stats.ProcessingStats(clock_that_races)
    stats.frame_published(0.1, None, "camera_info")
    racer = threading.Thread(target=stats.frame_published, args=(0.1, None, "fallback"))
    armed.append(racer)
    first = stats.snapshot()
    racer.join()
    second = stats.snapshot()
    assert first.published_total == 1 and first.calibration_source == "camera_info"
    assert second.published_total == 2 and second.calibration_source == "fallback"
    assert [first.inference.count, second.inference.count] == [1, 1]


def test_array_carries_stamp_and_statuses():
    status = DiagnosticStatus(name="x")
    msg = diag.diagnostic_array([status], Time(sec=5, nanosec=6))
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (5, 6)
    assert [s.name for s in msg.status] == ["x"]


def test_rejections_are_counted_per_reason_with_stable_keys():
    clock = ManualClock()
    stats = frame_stats.ProcessingStats(clock,
                                        rejection_kinds=("encoding", "step", "stamp_backwards"))
    for kind in ("step", "step", "encoding", "camera_info_size_mismatch"):
        stats.message_rejected(kind, f"{kind} is wrong")
    stats.frame_failed()
    stats.stamp_restart()
    clock.now += 1.0
    snap = stats.snapshot()
    # Named kinds are there from the start, at 0; others appear when first counted.
    assert snap.rejected_by_kind == {"encoding": 1, "step": 2, "stamp_backwards": 0,
                                     "camera_info_size_mismatch": 1}
    assert (snap.rejected_total, snap.failed_total, snap.stamp_restarts) == (4, 1, 1)
    assert snap.last_rejection == "camera_info_size_mismatch is wrong"
    found = values(diag.status_from_snapshot(snap, "n", "CPU"))
    assert found[diag.rejected_key("step")] == "2"
    assert found[diag.rejected_key("stamp_backwards")] == "0"
    assert found[diag.rejected_key("camera_info_size_mismatch")] == "1"
    assert found[diag.KEY_FAILED] == "1" and found[diag.KEY_STAMP_RESTARTS] == "1"
    assert found[diag.KEY_REJECTED] == "4"


def test_rate_limit_allows_one_line_per_key_and_period_and_counts_the_rest():
    clock = ManualClock()
    limit = frame_stats.KeyedRateLimit(5.0, clock)
    assert limit.allow("encoding") == 0
    assert limit.allow("step") == 0  # another reason is not held back by the first
    for _ in range(7):
        clock.now += 0.5
        assert limit.allow("encoding") is None
    clock.now += 1.5  # 5.0 s after the first line
    assert limit.allow("encoding") == 7
    assert limit.allow("encoding") is None
    clock.now += 5.0
    assert limit.allow("encoding") == 1
    assert limit.allow("step") == 0
