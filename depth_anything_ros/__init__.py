"""Depth Anything on OpenVINO for ROS 2.

One sub-package per layer. In this order, a module imports only from its own layer and
the ones before it, so each is importable without the ones after it:

- ``inference``: the OpenVINO engine, model metadata, network sizing, precision choice
  (openvino + numpy);
- ``geometry``: intrinsics, calibration records, rays, colorizing (numpy);
- ``pipeline``: one camera's per-frame processing and the frame runner that drives it
  (intake, inference lanes, ordered finisher), image decoding, parameters table,
  statistics (no ROS), shared by the node, the CLIs and the benchmarks;
- ``ros``: the rclpy node, parameter declarations, message conversion, QoS,
  diagnostics, DDS profile;
- ``cli``: the standalone command-line tools;
- ``export``: checkpoints to ONNX and OpenVINO IR (torch; build time only, the
  ``export`` extra). Last although it runs first: it writes the model contract
  ``inference`` reads (metadata, sizing) and reports errors as the other CLIs do.

Only ``ros`` imports rclpy or message packages and only ``export`` imports torch;
test/test_layers.py checks all three rules.
"""

__version__ = "0.1.0"
