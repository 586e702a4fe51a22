"""Per-camera processing without ROS, shared by the node, the CLI and the benchmarks."""
