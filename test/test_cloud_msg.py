"""PointCloud2 layout, decoded byte by byte from the message as a consumer would."""

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header

from depth_anything_ros.geometry.intrinsics import Intrinsics
from depth_anything_ros.geometry.rays import RayGrid
from depth_anything_ros.ros.cloud_msg import CloudBuilder

HEADER = Header(frame_id="camera_optical")
HEADER.stamp.sec = 5
RNG = np.random.default_rng(3)


def random_points(height, width, nan_fraction=0.2):
    points = RNG.uniform(-5.0, 5.0, (height, width, 3)).astype(np.float32)
    points[RNG.random((height, width)) < nan_fraction] = np.nan
    return points


def decode(msg):
    """Structured view of msg.data built only from what the message declares."""
    assert not msg.is_bigendian
    assert all(f.datatype == PointField.FLOAT32 and f.count == 1 for f in msg.fields)
    dtype = np.dtype({"names": [f.name for f in msg.fields], "formats": ["<f4"] * len(msg.fields),
                      "offsets": [f.offset for f in msg.fields], "itemsize": msg.point_step})
    assert len(msg.data) == msg.row_step * msg.height
    return np.frombuffer(msg.data, dtype).reshape(msg.height, msg.width)


def test_xyz_layout():
    msg = CloudBuilder().build(random_points(4, 6), HEADER)
    assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields] == [
        ("x", 0, PointField.FLOAT32, 1), ("y", 4, PointField.FLOAT32, 1),
        ("z", 8, PointField.FLOAT32, 1)]
    assert (msg.height, msg.width, msg.point_step, msg.row_step) == (4, 6, 16, 96)
    assert msg.is_dense is False and msg.is_bigendian is False
    assert msg.header == HEADER and len(msg.data) == 4 * 6 * 16


def test_xyzrgb_layout():
    points = random_points(3, 5)
    colors = RNG.integers(0, 256, (3, 5, 3), dtype=np.uint8)
    msg = CloudBuilder().build(points, HEADER, colors)
    assert [(f.name, f.offset) for f in msg.fields] == [("x", 0), ("y", 4), ("z", 8), ("rgb", 16)]
    assert (msg.point_step, msg.row_step, msg.is_dense) == (32, 160, False)


def test_xyz_values_at_every_pixel_including_nan():
    points = random_points(7, 9)
    cloud = decode(CloudBuilder().build(points, HEADER))
    for axis, name in enumerate("xyz"):
        np.testing.assert_array_equal(cloud[name], points[..., axis])  # NaN positions too
    raw = np.frombuffer(CloudBuilder().build(points, HEADER).data, np.uint8).reshape(7, 9, 16)
    assert not raw[..., 12:].any()  # padding is zero, not leftover memory


def test_rgb_is_packed_0x00rrggbb_at_sampled_pixels():
    points = random_points(6, 8)
    colors_bgr = RNG.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    cloud = decode(CloudBuilder().build(points, HEADER, colors_bgr))
    packed = cloud["rgb"].copy().view("<u4")
    for v, u in [(0, 0), (5, 7), (2, 3), (4, 1)]:
        b, g, r = (int(c) for c in colors_bgr[v, u])
        assert packed[v, u] == (r << 16) | (g << 8) | b
        np.testing.assert_array_equal([cloud["x"][v, u], cloud["y"][v, u], cloud["z"][v, u]],
                                      points[v, u])
    assert not (packed >> 24).any()


def test_known_colour_bytes():
    points = np.zeros((1, 1, 3), np.float32)
    msg = CloudBuilder().build(points, HEADER, np.array([[[0x10, 0x20, 0x30]]], np.uint8))
    assert bytes(msg.data[16:20]) == bytes([0x10, 0x20, 0x30, 0x00])  # B G R 0, little-endian


def test_plane_from_ray_grid_survives_serialization():
    intr = Intrinsics(500.0, 500.0, 319.5, 239.5, 640, 480)
    grid = RayGrid(intr, stride=4)
    depth = np.full((480, 640), 2.0, np.float32)
    depth[:10] = np.nan
    msg = CloudBuilder().build(grid.points(depth), HEADER)
    msg = deserialize_message(serialize_message(msg), PointCloud2)
    assert (msg.height, msg.width) == (120, 160)
    cloud = decode(msg)
    assert np.isnan(cloud["z"][:3]).all()  # rows 0, 4, 8 of the image
    np.testing.assert_array_equal(cloud["z"][3:], 2.0)
    np.testing.assert_allclose(cloud["x"][50, 20], 2.0 * (80 - 319.5) / 500.0, rtol=1e-6)
    np.testing.assert_allclose(cloud["y"][50, 20], 2.0 * (200 - 239.5) / 500.0, rtol=1e-6)


def test_earlier_messages_do_not_change_when_the_buffer_is_reused():
    builder = CloudBuilder()
    first_points = random_points(5, 5, nan_fraction=0.0)
    first = builder.build(first_points, HEADER)
    builder.build(random_points(5, 5), HEADER)
    np.testing.assert_array_equal(decode(first)["z"], first_points[..., 2])


def test_layout_and_shape_changes_between_frames():
    builder = CloudBuilder()
    colours = np.full((4, 4, 3), 200, np.uint8)
    assert builder.build(random_points(4, 4), HEADER, colours).point_step == 32
    plain = builder.build(random_points(3, 2), HEADER)
    assert (plain.point_step, plain.height, plain.width, len(plain.data)) == (16, 3, 2, 96)
    again = builder.build(random_points(4, 4), HEADER, colours)
    assert (decode(again)["rgb"].copy().view("<u4") == 0xC8C8C8).all()


def test_rejects_mismatched_inputs():
    builder = CloudBuilder()
    with pytest.raises(ValueError, match="points"):
        builder.build(np.zeros((4, 4), np.float32), HEADER)
    with pytest.raises(ValueError, match="colors_bgr"):
        builder.build(np.zeros((4, 4, 3), np.float32), HEADER, np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="colors_bgr"):
        builder.build(np.zeros((4, 4, 3), np.float32), HEADER, np.zeros((4, 4, 3), np.float32))
