"""OpenVINO inference: IR loading and metadata, network sizing, precision choice.

No ROS, no torch.
"""
