"""Depth Anything V2 on OpenVINO for ROS 2.

One sub-package per layer, each importable without the ones after it:

- ``export``: checkpoints to ONNX and OpenVINO IR (torch; build time only, the
  ``export`` extra);
- ``inference``: the OpenVINO engine, model metadata, network sizing, precision choice
  (openvino + numpy);
- ``geometry``: intrinsics, calibration records, rays, colorizing (numpy);
- ``pipeline``: one camera's per-frame processing, image decoding, parameters table,
  statistics (no ROS), shared by the node, the CLI and the benchmarks;
- ``ros``: the rclpy node, parameter declarations, message conversion, QoS,
  diagnostics, DDS profile;
- ``cli``: the standalone command-line tools.

Only ``ros`` imports rclpy or message packages and only ``export`` imports torch;
test/test_layers.py checks both.
"""

__version__ = "0.1.0"
