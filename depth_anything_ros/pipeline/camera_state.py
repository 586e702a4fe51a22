"""Everything one camera has in the runner, in one object, with the thread that owns each part.

The runner owns one ``CameraState`` per camera. Each field is written by one thread only
(named beside it); what another thread needs crosses by a hand-off: frames through the
runner's queues, calibrations and references through their locked stores
(``CalibrationRing``, ``CameraAlignment``), counts and the published frame's calibration
source through ``ProcessingStats``.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from depth_anything_ros.pipeline.camera import CameraPipeline
from depth_anything_ros.pipeline.parameters import NodeParams
from depth_anything_ros.pipeline.stats import ProcessingStats


class CameraState:
    """One camera's pipeline, counters and ordering state."""

    def __init__(self, name: str, pipeline: CameraPipeline, stats: ProcessingStats,
                 params: Callable[[], NodeParams], expects_camera_info: bool = True) -> None:
        self.name = name                      # "" for the node's single, unnamed camera
        self.pipeline = pipeline
        self.stats = stats                    # locked; may outlive this object (node totals)
        self.params = params                  # the parameters a new frame starts with
        # Recorded frames wait for the CameraInfo recorded beside them unless there is none.
        self.expects_camera_info = expects_camera_info
        # Intake thread only (subscription callbacks, or the bag's reader):
        self.arrivals = 0                     # frames accepted, numbering them
        self.frame_id = ""                    # the latest image's, for TF lookups
        self.held: Optional[Any] = None       # recorded: a frame waiting for its CameraInfo
        # Finisher thread only:
        self.last_published = -1              # arrival number of the last finished frame

    def say(self, text: str) -> str:
        """Prefix a log line with the camera's name when it has one."""
        return f"[{self.name}] {text}" if self.name else text
