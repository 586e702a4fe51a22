"""Start depth_anything_node on a camera, optionally with rviz2 showing its outputs.

    ros2 launch depth_anything_ros depth.launch.py \
        image_topic:=/camera/color/image_raw camera_info_topic:=/camera/color/camera_info

For a compressed stream set ``input_transport: compressed`` in a params file; the node
then subscribes ``<image_topic>/compressed``. The model_path, device and autostart
arguments take precedence over the same keys in params_file. With autostart:=false the
node stays unconfigured until a lifecycle manager (e.g. nav2_lifecycle_manager with
node_names: [depth_anything]) configures and activates it.
"""

from typing import List

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

PACKAGE = "depth_anything_ros"


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare(PACKAGE)
    image_topic = LaunchConfiguration("image_topic")
    namespace = LaunchConfiguration("namespace")
    arguments = [
        DeclareLaunchArgument("image_topic", default_value="/camera/image_raw",
                              description="Camera image topic (sensor_msgs/Image)."),
        DeclareLaunchArgument("camera_info_topic", default_value="/camera/camera_info",
                              description="CameraInfo of that camera."),
        DeclareLaunchArgument("model_path", default_value="",
                              description="OpenVINO IR (.xml) or folder; empty: the models "
                                          "installed with the package."),
        DeclareLaunchArgument("device", default_value="CPU",
                              description="OpenVINO device: CPU, GPU, NPU, AUTO."),
        DeclareLaunchArgument("cameras", default_value="[]",
                              description="Cameras served by one node, e.g. [front,rear]: "
                                          "topics <name>/image, <name>/camera_info, "
                                          "<name>/depth/...; [] keeps params_file's (one "
                                          "camera on image_topic by default)."),
        DeclareLaunchArgument("autostart", default_value="true",
                              description="Configure and activate at start; false: wait "
                                          "for a lifecycle manager (Nav2)."),
        DeclareLaunchArgument("params_file",
                              default_value=PathJoinSubstitution([share, "config", "depth.yaml"]),
                              description="Node parameters (YAML)."),
        DeclareLaunchArgument("namespace", default_value="",
                              description="Namespace of the node and its output topics."),
        DeclareLaunchArgument("use_rviz", default_value="false",
                              description="Open rviz2 on the colorized depth and the cloud."),
        DeclareLaunchArgument("rviz_fixed_frame", default_value="camera_color_optical_frame",
                              description="rviz2 fixed frame: the camera's optical frame_id "
                                          "when no TF tree is running."),
    ]
    depth_node = Node(
        package=PACKAGE,
        executable="depth_anything_node",
        name="depth_anything",
        namespace=namespace,
        output="screen",
        parameters=[
            LaunchConfiguration("params_file"),
            {
                # Typed explicitly: an empty or numeric-looking string would otherwise be
                # parsed as YAML and no longer be a string parameter.
                "model_path": ParameterValue(LaunchConfiguration("model_path"), value_type=str),
                "device": ParameterValue(LaunchConfiguration("device"), value_type=str),
                "autostart": ParameterValue(LaunchConfiguration("autostart"), value_type=bool),
                # An empty list leaves the params file's value in place.
                "cameras": ParameterValue(LaunchConfiguration("cameras"), value_type=List[str]),
            },
        ],
        remappings=[
            ("image", image_topic),
            ("image/compressed", [image_topic, "/compressed"]),
            ("camera_info", LaunchConfiguration("camera_info_topic")),
        ],
    )
    # Same namespace as the node: the rviz config uses relative topic names.
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        namespace=namespace,
        arguments=["-d", PathJoinSubstitution([share, "config", "depth.rviz"]),
                   "-f", LaunchConfiguration("rviz_fixed_frame")],
        condition=IfCondition(LaunchConfiguration("use_rviz")),
        output="screen",
    )
    return LaunchDescription(arguments + [depth_node, rviz])
