"""Command-line tools that run without ROS."""
