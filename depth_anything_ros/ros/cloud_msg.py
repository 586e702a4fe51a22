"""Organized sensor_msgs/PointCloud2 from an (h, w, 3) point grid.

Same layout as depth_image_proc's point_cloud_xyz / point_cloud_xyzrgb so consumers that
work with those (rviz2, Nav2 voxel/STVL layers, PCL) work with ours: x, y, z float32 at
0/4/8 in a 16-byte point, or plus rgb at 16 in a 32-byte point; NaN marks missing points,
so the cloud is organized (height x width) and not dense. sensor_msgs_py is not used: it
is not on PyPI and its create_cloud swaps height and width for 2-D input
(ros2/common_interfaces#236).
"""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header

from depth_anything_ros.ros.codec import fill_data

XYZ_POINT_STEP = 16
XYZRGB_POINT_STEP = 32
RGB_OFFSET = 16

_XYZ_FIELDS = tuple(PointField(name=name, offset=offset, datatype=PointField.FLOAT32, count=1)
                    for name, offset in (("x", 0), ("y", 4), ("z", 8)))
_XYZRGB_FIELDS = _XYZ_FIELDS + (
    PointField(name="rgb", offset=RGB_OFFSET, datatype=PointField.FLOAT32, count=1),)


class CloudBuilder:
    """Builds clouds into one reusable byte buffer per (shape, layout).

    The buffer starts zeroed, so padding bytes are deterministic (and the rgb word's top
    byte stays 0) without being rewritten every frame.
    """

    def __init__(self) -> None:
        self._raw = np.zeros((0, 0, XYZ_POINT_STEP), np.uint8)

    def build(self, points: np.ndarray, header: Header,
              colors_bgr: np.ndarray | None = None) -> PointCloud2:
        """PointCloud2 of ``points`` (h, w, 3) metres.

        With ``colors_bgr`` (h, w, 3) uint8 it gets an rgb field holding 0x00RRGGBB in a
        float32 (the PCL/depth_image_proc convention that rviz2 decodes).
        """
        if points.ndim != 3 or points.shape[2] != 3:
            raise ValueError(f"points must be (h, w, 3), got shape {points.shape}")
        height, width = points.shape[:2]
        if colors_bgr is not None and (colors_bgr.shape != points.shape
                                       or colors_bgr.dtype != np.uint8):
            raise ValueError(f"colors_bgr must be uint8 {points.shape}, got "
                             f"{colors_bgr.dtype} {colors_bgr.shape}")
        point_step = XYZ_POINT_STEP if colors_bgr is None else XYZRGB_POINT_STEP
        if self._raw.shape != (height, width, point_step):
            self._raw = np.zeros((height, width, point_step), np.uint8)
        raw = self._raw
        # Explicit little-endian views keep the bytes right whatever the host order.
        raw.view("<f4")[..., :3] = points
        if colors_bgr is not None:
            # 0x00RRGGBB stored little-endian is the byte sequence B, G, R, 0.
            raw[..., RGB_OFFSET:RGB_OFFSET + 3] = colors_bgr
        msg = PointCloud2(header=header, height=height, width=width,
                          fields=list(_XYZ_FIELDS if colors_bgr is None else _XYZRGB_FIELDS),
                          is_bigendian=False, point_step=point_step,
                          row_step=width * point_step, is_dense=False)
        fill_data(msg, raw)
        return msg
