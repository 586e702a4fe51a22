"""QoS of the node's topics: sensor-data in, reliable out, both overridable the ROS way.

Depth 1 by default: an old depth frame is worth nothing once a newer one exists
(``input_queue_depth`` trades that for counting every frame). Every publisher and
subscription also takes the standard ``qos_overrides.<topic>.<publisher|subscription>.
<policy>`` parameters (history, depth, reliability), so a QoS mismatch with some other
node is fixed in the params file; ``input_qos``/``output_qos`` only choose the defaults.
"""

from __future__ import annotations

from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions

OVERRIDABLE = QoSOverridingOptions.with_default_policies()


def qos_profile(choice: str, depth: int = 1) -> QoSProfile:
    """``choice`` is an input_qos/output_qos value: sensor_data (best effort) or reliable."""
    reliability = (ReliabilityPolicy.BEST_EFFORT if choice == "sensor_data"
                   else ReliabilityPolicy.RELIABLE)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=reliability)
