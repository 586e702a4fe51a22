"""The fields and bytes of the node's messages, without the message types.

The node fills rclpy messages (``ros.codec``, ``ros.cloud_msg``) and the bag tool fills
rosbags messages (``cli.bag_messages``) from what this module computes, so a depth image,
CameraInfo or point cloud recorded from a bag carries exactly the bytes the node would
publish for the same frame. CameraInfo is also read here: the republished CameraInfo is
built from the calibration record read from the camera's, and both ends of that round
trip belong together.
"""

from __future__ import annotations

from dataclasses import dataclass
import sys
from typing import Any, Optional

import numpy as np

from depth_anything_ros.geometry.calibration import CameraCalibration, describes, IDENTITY_3X3
from depth_anything_ros.geometry.intrinsics import Intrinsics

NATIVE_BIG_ENDIAN = sys.byteorder == "big"
POINTFIELD_FLOAT32 = 7          # sensor_msgs/PointField FLOAT32
XYZ_POINT_STEP = 16
XYZRGB_POINT_STEP = 32
RGB_OFFSET = 16
# (name, offset) of each float32 field, as depth_image_proc's point_cloud_xyz(rgb) lay them out.
XYZ_FIELDS = (("x", 0), ("y", 4), ("z", 8))
XYZRGB_FIELDS = XYZ_FIELDS + (("rgb", RGB_OFFSET),)


@dataclass(frozen=True)
class ImageLayout:
    """The sensor_msgs/Image fields besides header and data."""

    height: int
    width: int
    encoding: str
    is_bigendian: bool
    step: int


def image_layout(pixels: np.ndarray, encoding: str) -> ImageLayout:
    """Return the layout of '32FC1' (float32 HxW, metres) or 'bgr8' (uint8 HxWx3) pixels."""
    if encoding == "32FC1":
        if pixels.ndim != 2 or pixels.dtype != np.float32:
            raise ValueError(
                f"32FC1 needs a float32 (H, W) array, got {pixels.dtype} {pixels.shape}")
    elif encoding == "bgr8":
        if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
            raise ValueError(
                f"bgr8 needs a uint8 (H, W, 3) array, got {pixels.dtype} {pixels.shape}")
    else:
        raise ValueError(f"images are written as 32FC1 or bgr8, not {encoding!r}")
    height, width = pixels.shape[:2]
    channels = pixels.shape[2] if pixels.ndim == 3 else 1
    return ImageLayout(height=int(height), width=int(width), encoding=encoding,
                       is_bigendian=NATIVE_BIG_ENDIAN,
                       step=int(width * pixels.itemsize * channels))


def packed_bytes(buffer: np.ndarray) -> np.ndarray:
    """Return ``buffer``'s bytes in row-major order as a flat uint8 array.

    A view when the buffer is already packed, so the caller's copy into its message is
    the only one.
    """
    return np.ascontiguousarray(buffer).reshape(-1).view(np.uint8)


@dataclass(frozen=True)
class CameraInfoFields:
    """The sensor_msgs/CameraInfo fields the node sets; binning and ROI stay zero."""

    height: int
    width: int
    distortion_model: str
    d: tuple[float, ...]
    k: tuple[float, ...]
    r: tuple[float, ...]
    p: tuple[float, ...]


def camera_info_fields(intr: Intrinsics,
                       template: Optional[CameraCalibration] = None) -> CameraInfoFields:
    """Return a CameraInfo that matches a published depth image exactly (size, K, P).

    Distortion coefficients act on normalised coordinates ((u-cx)/fx), so they stay valid
    when the image is only rescaled; they are copied (with R) whenever ``template``'s own
    intrinsics, rescaled to ``intr``'s size, are ``intr``. Otherwise ``intr`` does not come
    from that calibration (e.g. the field-of-view fallback) and claiming its distortion
    would be wrong, so the result says plumb_bob with zero coefficients.
    """
    model, d, r = "plumb_bob", (0.0,) * 5, IDENTITY_3X3
    if template is not None and describes(template, intr):
        model, d, r = template.distortion_model, tuple(template.d), tuple(template.r)
    return CameraInfoFields(height=intr.height, width=intr.width, distortion_model=model, d=d,
                            k=intr.k_matrix(), r=r, p=intr.p_matrix())


def header_stamp_ns(header: Any) -> int:
    """Return a std_msgs/Header's stamp as one integer, the form the pipeline keys stamps by.

    Reads the fields by name, so rclpy and rosbags messages both work.
    """
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def camera_info_calibration(msg: Any) -> CameraCalibration:
    """Return the camera-describing fields of a sensor_msgs/CameraInfo as a plain record.

    Reads the fields by name, so rclpy and rosbags messages both work.
    """
    roi = msg.roi
    return CameraCalibration(
        width=int(msg.width), height=int(msg.height), k=tuple(float(v) for v in msg.k),
        d=tuple(float(v) for v in msg.d), r=tuple(float(v) for v in msg.r),
        p=tuple(float(v) for v in msg.p), distortion_model=str(msg.distortion_model),
        binning_x=int(msg.binning_x), binning_y=int(msg.binning_y),
        roi=(int(roi.x_offset), int(roi.y_offset), int(roi.width), int(roi.height)))


@dataclass(frozen=True)
class CloudLayout:
    """The sensor_msgs/PointCloud2 fields besides header and data.

    ``fields`` holds (name, offset) of float32 (POINTFIELD_FLOAT32) fields of count 1.
    """

    height: int
    width: int
    fields: tuple[tuple[str, int], ...]
    point_step: int
    row_step: int
    is_bigendian: bool = False
    is_dense: bool = False


class CloudPacker:
    """Packs organized clouds into one reusable byte buffer per (shape, layout).

    The buffer starts zeroed, so padding bytes are deterministic (and the rgb word's top
    byte stays 0) without being rewritten every frame. The returned bytes are that
    buffer: copy them into the message before the next ``pack``.
    """

    def __init__(self) -> None:
        self._raw = np.zeros((0, 0, XYZ_POINT_STEP), np.uint8)

    def pack(self, points: np.ndarray,
             colors_bgr: np.ndarray | None = None) -> tuple[CloudLayout, np.ndarray]:
        """Lay out ``points`` (h, w, 3) metres as x y z, or x y z rgb with ``colors_bgr``.

        ``colors_bgr`` (h, w, 3) uint8 becomes an rgb field holding 0x00RRGGBB in a float32
        (the PCL/depth_image_proc convention that rviz2 decodes). Returns the layout and
        the (h, w, point_step) bytes.
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
        # Each point's x y z as one 12-byte record, and its B G R as one 3-byte record:
        # numpy then copies a record per point instead of looping over 3 channels (2.7
        # against 6 ms for VGA xyzrgb). Little-endian floats whatever the host order.
        _records(raw, 0, 12)[...] = _as_records(np.asarray(points, "<f4"), 12)
        if colors_bgr is not None:
            # 0x00RRGGBB stored little-endian is the byte sequence B, G, R, 0.
            _records(raw, RGB_OFFSET, 3)[...] = _as_records(colors_bgr, 3)
        layout = CloudLayout(height=int(height), width=int(width),
                             fields=XYZ_FIELDS if colors_bgr is None else XYZRGB_FIELDS,
                             point_step=point_step, row_step=int(width) * point_step)
        return layout, raw


def _records(raw: np.ndarray, offset: int, size: int) -> np.ndarray:
    """Return the ``size`` bytes at ``offset`` of every point of ``raw`` (h, w, step)."""
    height, width, step = raw.shape
    return np.ndarray((height, width), f"V{size}", raw, offset, (width * step, step))


def _as_records(values: np.ndarray, size: int) -> np.ndarray:
    """Return (h, w, c) values as one ``size``-byte record per pixel."""
    return np.ascontiguousarray(values).view(f"V{size}")[..., 0]
