"""The outputs a frame can have: one table for the runner, the node and the bag tool.

A new output (say a confidence image) is one more entry here, a field of the same name in
``FrameOutputs`` and ``Wanted`` and its computation in ``CameraPipeline.finish``: the node
and the bag tool publish or write every entry generically, by its ``kind``, so neither
lists outputs of its own.
"""

from __future__ import annotations

from typing import NamedTuple

# How an output is carried: an image of that encoding, a CameraInfo, or a PointCloud2.
KIND_FLOAT_IMAGE = "32FC1"
KIND_BGR_IMAGE = "bgr8"
KIND_CAMERA_INFO = "camera_info"
KIND_POINTS = "points"
IMAGE_KINDS = (KIND_FLOAT_IMAGE, KIND_BGR_IMAGE)


class Output(NamedTuple):
    """One output: its key (``--outputs`` name), topic in the camera's namespace, kind."""

    key: str
    name: str
    kind: str


# In the order a frame's outputs are published (and written to a bag).
OUTPUTS = (Output("relative", "depth/relative", KIND_FLOAT_IMAGE),
           Output("depth", "depth/image", KIND_FLOAT_IMAGE),
           Output("camera_info", "depth/camera_info", KIND_CAMERA_INFO),
           Output("colorized", "depth/colorized", KIND_BGR_IMAGE),
           Output("points", "depth/points", KIND_POINTS),
           Output("confidence", "depth/confidence", KIND_FLOAT_IMAGE))
OUTPUT_KEYS = tuple(output.key for output in OUTPUTS)
# Outputs that open a camera's input when watched: all but the CameraInfo, which only
# describes the others.
IMAGE_OUTPUT_KEYS = tuple(output.key for output in OUTPUTS if output.kind != KIND_CAMERA_INFO)
