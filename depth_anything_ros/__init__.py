"""Depth Anything V2 on OpenVINO for ROS 2.

Layers, each importable without the ones after it:
``model`` (export, torch) -> ``engine`` (openvino + numpy) -> ``geometry`` (numpy)
-> ``node`` (rclpy). Only ``model`` needs the optional ``export`` extra.
"""

__version__ = "0.1.0"
