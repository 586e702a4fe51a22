"""Message codecs without ROS: bytes of sensor_msgs layouts to arrays and back.

Apart from the pipeline's maths so that what is a wire format (encodings, steps, endianness,
PointCloud2 fields) and what is geometry stay in different places. The messages are
duck-typed: any object with the fields of sensor_msgs/Image, CompressedImage or PointCloud2
(rclpy's, rosbags', a test's) decodes the same.
"""
