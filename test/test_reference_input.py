"""Decoding metric references without ROS: depth images in metres, x y z out of any cloud.

Messages are plain records with the sensor_msgs field names, as rosbags gives them, so
byte layouts (padding, byte order, extra LiDAR fields) are what is under test.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from depth_anything_ros.pipeline.messages.reference_input import (cloud_points, reference_depth,
                                                                  ReferenceDecodeError)
from depth_anything_ros.pipeline.notes import REJECT_REFERENCE_CLOUD, REJECT_REFERENCE_ENCODING

RNG = np.random.default_rng(11)


def _image(values: np.ndarray, encoding: str, big_endian: bool = False,
           pad: int = 0) -> SimpleNamespace:
    dtype = values.dtype.newbyteorder(">" if big_endian else "<")
    rows = values.astype(dtype).view(np.uint8).reshape(values.shape[0], -1)
    padded = np.concatenate([rows, np.full((rows.shape[0], pad), 0xAB, np.uint8)], axis=1)
    return SimpleNamespace(height=values.shape[0], width=values.shape[1], encoding=encoding,
                           is_bigendian=big_endian, step=padded.shape[1],
                           data=padded.tobytes())


def _field(name: str, offset: int, datatype: int = 7) -> SimpleNamespace:
    return SimpleNamespace(name=name, offset=offset, datatype=datatype, count=1)


def _cloud(xyz: np.ndarray, fields: list, point_step: int, big_endian: bool = False,
           height: int = 1) -> SimpleNamespace:
    width = len(xyz) // height
    raw = np.zeros((len(xyz), point_step), np.uint8)
    order = ">f4" if big_endian else "<f4"
    by_name = {f.name: f.offset for f in fields}
    for axis, name in enumerate("xyz"):
        if name in by_name:
            offset = by_name[name]
            raw[:, offset:offset + 4] = xyz[:, axis].astype(order).view(np.uint8).reshape(-1, 4)
    return SimpleNamespace(height=height, width=width, fields=fields, is_bigendian=big_endian,
                           point_step=point_step, row_step=width * point_step,
                           data=raw.tobytes())


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("pad", [0, 3, 8])
def test_32fc1_is_metres_with_zero_and_nan_as_no_data(big_endian, pad):
    depth = RNG.uniform(0.3, 12.0, (6, 9)).astype(np.float32)
    depth[0, 0], depth[1, 2], depth[2, 3] = 0.0, np.nan, -1.0
    out = reference_depth(_image(depth, "32FC1", big_endian, pad))
    assert out.dtype == np.float32 and out.shape == (6, 9)
    valid = depth > 0
    assert np.array_equal(out[valid], depth[valid])
    assert np.isnan(out[~valid]).all() and (~valid).sum() == 3


@pytest.mark.parametrize("encoding", ["16UC1", "mono16"])
@pytest.mark.parametrize("big_endian", [False, True])
def test_16_bit_depth_is_millimetres(encoding, big_endian):
    mm = RNG.integers(1, 65535, (5, 7)).astype(np.uint16)
    mm[4, 6] = 0
    out = reference_depth(_image(mm, encoding, big_endian, pad=1))
    np.testing.assert_allclose(out[:4], mm[:4] * 0.001, rtol=1e-6)
    assert np.isnan(out[4, 6])


@pytest.mark.parametrize("msg, words", [
    (_image(np.ones((4, 4), np.float64), "64FC1"), "'64FC1'"),
    (_image(np.ones((4, 4), np.uint8), "mono8"), "'mono8'"),
])
def test_other_encodings_are_refused_with_the_expected_ones_named(msg, words):
    with pytest.raises(ReferenceDecodeError) as err:
        reference_depth(msg)
    assert err.value.kind == REJECT_REFERENCE_ENCODING
    assert words in str(err.value) and "32FC1" in str(err.value) and "16UC1" in str(err.value)


def test_a_depth_image_whose_data_does_not_match_its_size_is_refused():
    msg = _image(np.ones((4, 5), np.float32), "32FC1")
    msg.data = msg.data[:-4]
    with pytest.raises(ReferenceDecodeError) as err:
        reference_depth(msg)
    assert err.value.kind == REJECT_REFERENCE_ENCODING
    short_step = _image(np.ones((4, 5), np.float32), "32FC1")
    short_step.step = 8
    with pytest.raises(ReferenceDecodeError):
        reference_depth(short_step)


@pytest.mark.parametrize("big_endian", [False, True])
def test_lidar_clouds_with_extra_fields_give_their_xyz(big_endian):
    xyz = RNG.normal(0, 5, (24, 3)).astype(np.float32)
    xyz[3] = np.nan
    # An Ouster-like layout: x y z, padding, intensity, t (uint32), ring (uint16).
    fields = [_field("x", 0), _field("y", 4), _field("z", 8), _field("intensity", 16),
              _field("t", 20, 6), _field("ring", 24, 4)]
    out = cloud_points(_cloud(xyz, fields, 32, big_endian, height=4))
    assert out.shape == (24, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out, xyz)


def test_field_order_in_the_point_does_not_matter():
    xyz = RNG.normal(0, 5, (10, 3)).astype(np.float32)
    fields = [_field("z", 0), _field("x", 8), _field("y", 4)]
    np.testing.assert_array_equal(cloud_points(_cloud(xyz, fields, 12)), xyz)


@pytest.mark.parametrize("fields, point_step, words", [
    ([_field("x", 0), _field("y", 4)], 12, "z"),
    ([_field("x", 0), _field("y", 4), _field("z", 8, 8)], 16, "z"),   # float64 z
    ([_field("x", 0), _field("y", 4), _field("z", 10)], 12, "does not fit"),
])
def test_clouds_without_float32_xyz_or_with_bad_sizes_are_refused(fields, point_step, words):
    msg = _cloud(np.zeros((4, 3), np.float32), [f for f in fields if f.offset + 4 <= point_step],
                 point_step)
    msg.fields = fields
    with pytest.raises(ReferenceDecodeError) as err:
        cloud_points(msg)
    assert err.value.kind == REJECT_REFERENCE_CLOUD
    assert words in str(err.value)


def test_a_cloud_shorter_than_its_header_says_is_refused():
    msg = _cloud(np.zeros((8, 3), np.float32), [_field(a, 4 * i) for i, a in enumerate("xyz")],
                 16)
    msg.data = msg.data[:-16]
    with pytest.raises(ReferenceDecodeError) as err:
        cloud_points(msg)
    assert err.value.kind == REJECT_REFERENCE_CLOUD
