"""Organized sensor_msgs/PointCloud2 from an (h, w, 3) point grid.

Same layout as depth_image_proc's point_cloud_xyz / point_cloud_xyzrgb so consumers that
work with those (rviz2, Nav2 voxel/STVL layers, PCL) work with ours: x, y, z float32 at
0/4/8 in a 16-byte point, or plus rgb at 16 in a 32-byte point; NaN marks missing points,
so the cloud is organized (height x width) and not dense. The layout and bytes come from
the ROS-free ``pipeline.messages.output_layout``, which the bag tool shares. sensor_msgs_py is not
used: it is not on PyPI and its create_cloud swaps height and width for 2-D input
(ros2/common_interfaces#236).
"""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header

from depth_anything_ros.pipeline.messages.output_layout import (CloudPacker, RGB_OFFSET, XYZ_FIELDS,
                                                                XYZRGB_FIELDS)
from depth_anything_ros.ros.codec import fill_data

__all__ = ["CloudBuilder", "RGB_OFFSET"]

_POINT_FIELDS = {
    layout: [PointField(name=name, offset=offset, datatype=PointField.FLOAT32, count=1)
             for name, offset in layout]
    for layout in (XYZ_FIELDS, XYZRGB_FIELDS)}


class CloudBuilder:
    """Builds clouds through one reusable packing buffer (see ``CloudPacker``)."""

    def __init__(self) -> None:
        self._packer = CloudPacker()

    def build(self, points: np.ndarray, header: Header,
              colors_bgr: np.ndarray | None = None) -> PointCloud2:
        """PointCloud2 of ``points`` (h, w, 3) metres.

        With ``colors_bgr`` (h, w, 3) uint8 it gets an rgb field holding 0x00RRGGBB in a
        float32 (the PCL/depth_image_proc convention that rviz2 decodes).
        """
        layout, raw = self._packer.pack(points, colors_bgr)
        msg = PointCloud2(header=header, height=layout.height, width=layout.width,
                          fields=list(_POINT_FIELDS[layout.fields]),
                          is_bigendian=layout.is_bigendian, point_step=layout.point_step,
                          row_step=layout.row_step, is_dense=layout.is_dense)
        fill_data(msg, raw)
        return msg
