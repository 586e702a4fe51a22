"""The ROS 2 adapter: the lifecycle node and everything that touches rclpy or messages."""
