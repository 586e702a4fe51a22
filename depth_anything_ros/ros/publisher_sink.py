"""The node's end of the frame runner: which outputs to compute, and publishing them.

``PublisherSink`` asks for the outputs that have a subscriber when a frame starts and
publishes a finished frame's outputs, every entry of ``pipeline.outputs.OUTPUTS`` by its
kind, with the input image's header.
"""

from __future__ import annotations

from typing import Any, Optional

from depth_anything_ros.pipeline.camera import FrameOutputs, Wanted, wanted_outputs
from depth_anything_ros.pipeline.camera_state import CameraState
from depth_anything_ros.pipeline.outputs import (IMAGE_KINDS, KIND_CAMERA_INFO, Output,
                                                 OUTPUTS)
from depth_anything_ros.pipeline.parameters import NodeParams
from depth_anything_ros.pipeline.runner import Frame
from depth_anything_ros.ros.camera_io import CameraIO
from depth_anything_ros.ros.codec import array_to_image, intrinsics_to_camera_info

NOTHING = Wanted(**{output.key: False for output in OUTPUTS})


class PublisherSink:
    """Publishes finished frames on their camera's lifecycle publishers."""

    def __init__(self, cameras: list[CameraIO]) -> None:
        self._io = {camera.state: camera for camera in cameras}

    def wanted(self, camera: CameraState, p: NodeParams) -> Wanted:
        io = self._io[camera]
        if io.outputs is None:
            return NOTHING
        return wanted_outputs(camera.pipeline, p, io.subscribed)

    def emit(self, camera: CameraState, frame: Frame, out: FrameOutputs) -> None:
        io = self._io[camera]
        outputs = io.outputs
        if outputs is None:   # cleaned up meanwhile
            return
        for output in OUTPUTS:
            pub = outputs.get(output.key)
            if pub is not None and getattr(frame.wanted, output.key):
                msg = self._build(io, output, out, frame.header)
                if msg is not None:
                    pub.publish(msg)

    def pass_through(self, item: Any) -> None:
        raise TypeError("a live node passes nothing through")

    @staticmethod
    def _build(io: CameraIO, output: Output, out: FrameOutputs, header: Any) -> Optional[Any]:
        if output.kind == KIND_CAMERA_INFO:
            return intrinsics_to_camera_info(out.intrinsics, header, out.calibration)
        if output.kind in IMAGE_KINDS:
            pixels = getattr(out, output.key)
            return None if pixels is None else array_to_image(pixels, output.kind, header)
        return None if out.points is None else io.cloud_builder.build(out.points, header,
                                                                      out.colors)
