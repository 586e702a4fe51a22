"""The node's output messages as rosbags objects, serialized for a rosbag2 writer.

Field values and bytes come from ``pipeline.messages.output_layout``, which the node's own
message code uses too, so a message recorded here for a frame has the fields and data
bytes of the one the node publishes for it. The message classes are those of the ROS 2
distribution the package is built for (Kilted), whose definitions the output bag embeds.

An image or cloud is serialized by rosbags with an empty ``data`` and comes back as
pieces: those bytes with the real length spliced in, the pixel or point buffer itself,
and what follows ``data``. A writer that takes pieces (``bag_mcap``) then copies the
megabytes of a frame once, into the file, instead of into a serialization buffer first.
"""

from __future__ import annotations

import struct
from typing import Any, Optional, Union

import numpy as np
from rosbags.interfaces import (Qos, QosDurability, QosHistory, QosLiveliness, QosReliability,
                                QosTime)
from rosbags.typesys import get_typestore, Stores
from rosbags.typesys.store import Typestore

from depth_anything_ros.geometry.calibration import CameraCalibration
from depth_anything_ros.geometry.intrinsics import Intrinsics
from depth_anything_ros.pipeline.messages.output_layout import (camera_info_fields, CloudPacker,
                                                                image_layout, packed_bytes,
                                                                POINTFIELD_FLOAT32)

STORE = Stores.ROS2_KILTED
_UNSET = QosTime(0, 0)   # rmw's "unspecified": the default, infinite durations
_EMPTY = np.zeros(0, np.uint8)
# A serialized message: one buffer, or pieces whose concatenation is that buffer.
Serialized = Union[memoryview, tuple[memoryview, ...]]


def output_typestore() -> Typestore:
    return get_typestore(STORE)


def output_qos(reliability: str) -> Qos:
    """Return the QoS the node offers on its outputs (``output_qos``), for a replayed bag."""
    return Qos(history=QosHistory.KEEP_LAST, depth=1,
               reliability=(QosReliability.RELIABLE if reliability == "reliable"
                            else QosReliability.BEST_EFFORT),
               durability=QosDurability.VOLATILE, deadline=_UNSET, lifespan=_UNSET,
               liveliness=QosLiveliness.AUTOMATIC, liveliness_lease_duration=_UNSET,
               avoid_ros_namespace_conventions=False)


class MessageWriter:
    """Builds and serializes outputs; one instance per writing thread.

    A cloud's pieces point into a buffer the next cloud reuses, and an image's into the
    pipeline's arrays: write a frame's messages before building the next frame's. The
    input's header is copied field by field into the output store's Header, so the
    bag read with any store gets the camera's stamp and frame_id unchanged.
    """

    def __init__(self, typestore: Typestore) -> None:
        self._store = typestore
        types = typestore.types
        self._header = types["std_msgs/msg/Header"]
        self._time = types["builtin_interfaces/msg/Time"]
        self._image = types["sensor_msgs/msg/Image"]
        self._info = types["sensor_msgs/msg/CameraInfo"]
        self._roi = types["sensor_msgs/msg/RegionOfInterest"]
        self._cloud = types["sensor_msgs/msg/PointCloud2"]
        self._field = types["sensor_msgs/msg/PointField"]
        self._packer = CloudPacker()

    def header(self, header: Any) -> Any:
        return self._header(stamp=self._time(sec=int(header.stamp.sec),
                                             nanosec=int(header.stamp.nanosec)),
                            frame_id=str(header.frame_id))

    def image(self, pixels: np.ndarray, encoding: str, header: Any) -> Serialized:
        layout = image_layout(pixels, encoding)
        msg = self._image(header=header, height=layout.height, width=layout.width,
                          encoding=layout.encoding, is_bigendian=layout.is_bigendian,
                          step=layout.step, data=_EMPTY)
        return self._around(msg, packed_bytes(pixels), tail=0)

    def camera_info(self, intr: Intrinsics, template: Optional[CameraCalibration],
                    header: Any) -> Serialized:
        fields = camera_info_fields(intr, template)
        msg = self._info(
            header=header, height=fields.height, width=fields.width,
            distortion_model=fields.distortion_model, d=np.array(fields.d, np.float64),
            k=np.array(fields.k, np.float64), r=np.array(fields.r, np.float64),
            p=np.array(fields.p, np.float64), binning_x=0, binning_y=0,
            roi=self._roi(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
        return self._store.serialize_cdr(msg, msg.__msgtype__)

    def cloud(self, points: np.ndarray, colors_bgr: Optional[np.ndarray],
              header: Any) -> Serialized:
        layout, raw = self._packer.pack(points, colors_bgr)
        fields = [self._field(name=name, offset=offset, datatype=POINTFIELD_FLOAT32, count=1)
                  for name, offset in layout.fields]
        msg = self._cloud(header=header, height=layout.height, width=layout.width,
                          fields=fields, is_bigendian=layout.is_bigendian,
                          point_step=layout.point_step, row_step=layout.row_step,
                          data=_EMPTY, is_dense=layout.is_dense)
        return self._around(msg, packed_bytes(raw), tail=1)   # is_dense follows data

    def _around(self, msg: Any, data: np.ndarray, tail: int) -> tuple[memoryview, ...]:
        """Serialize ``msg`` (its ``data`` empty) and splice ``data`` into the bytes.

        ``data`` is a uint8 sequence, so nothing after it needs realigning: the bytes
        are those before the empty sequence's length, the real length, ``data``, then
        the ``tail`` bytes of the fields after it.
        """
        empty = self._store.serialize_cdr(msg, msg.__msgtype__)
        order = "<" if empty[1] == 1 else ">"    # the CDR encapsulation's byte order
        cut = len(empty) - tail - 4
        return (empty[:cut], memoryview(struct.pack(f"{order}I", data.size)),
                memoryview(data), empty[len(empty) - tail:])


def joined(data: Serialized) -> bytes | memoryview:
    """Return serialized pieces as one buffer (for writers that take only that)."""
    return b"".join(data) if isinstance(data, tuple) else data
