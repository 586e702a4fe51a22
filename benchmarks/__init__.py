"""Speed benchmarks for depth_anything_ros, measured against the usual alternatives.

``python -m benchmarks`` runs them (see benchmarks/README.md). Each section is its own
module so it can be read, and run (``--sections``), on its own:
``model_latency`` (network only, per backend and precision), ``pipeline_stages`` (the node's
per-frame work with the real modules), ``ros_e2e`` (through real ROS 2) and ``startup``.
Not installed with the package: it needs the build-time extras (torch, onnxruntime, nncf).
"""
