"""/diagnostics for the node: diagnostic_msgs/DiagnosticArray from the frame statistics.

diagnostic_updater is not available as a Python package outside a ROS distro, so this
module builds the message itself: one DiagnosticStatus per report, named
``<node>: <task>`` as diagnostic_updater would, so diagnostic_aggregator and
rqt_robot_monitor group it the usual way.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from builtin_interfaces.msg import Time as TimeMsg
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from depth_anything_ros.pipeline.stats import StatsSnapshot

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
