"""Image/CompressedImage/CameraInfo conversions against known pixels and real messages."""

import array
import math

import cv2
from hypothesis import event, given, settings
from hypothesis import strategies as st
import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from depth_anything_ros.geometry.calibration import calibration_intrinsics
from depth_anything_ros.geometry.intrinsics import Intrinsics
from depth_anything_ros.pipeline.messages.image_input import (compressed_to_array, image_to_array,
                                                              ImageDecodeError, SUPPORTED_ENCODINGS)
from depth_anything_ros.ros.codec import (array_to_image, camera_info_to_calibration, fill_data,
                                          intrinsics_to_camera_info)

RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, (6, 10, 3), dtype=np.uint8)
HEADER = Header(frame_id="camera_optical")
HEADER.stamp.sec = 12
HEADER.stamp.nanosec = 345


def camera_info_to_intrinsics(msg):
    """Return what the node derives from a CameraInfo message: its calibration's intrinsics."""
    return calibration_intrinsics(camera_info_to_calibration(msg))


def make_image(encoding, rows, padding=0, is_bigendian=False):
    """Message from (H, W, bytes-per-pixel) uint8 rows, each padded with junk bytes."""
    height, width = rows.shape[:2]
    flat = rows.reshape(height, -1)
    junk = np.full((height, padding), 0xAB, np.uint8)
    data = np.concatenate([flat, junk], axis=1)
    return Image(height=height, width=width, encoding=encoding, is_bigendian=is_bigendian,
                 step=flat.shape[1] + padding, data=data.tobytes())


@pytest.mark.parametrize("padding", [0, 5])
@pytest.mark.parametrize("encoding,rows,order,expected", [
    ("rgb8", RGB, "rgb", RGB),
    ("bgr8", RGB[..., ::-1], "bgr", RGB[..., ::-1]),
    ("rgba8", np.dstack([RGB, RNG.integers(0, 256, RGB.shape[:2], dtype=np.uint8)]), "rgb", RGB),
    ("bgra8", np.dstack([RGB[..., ::-1], np.full(RGB.shape[:2], 9, np.uint8)]), "bgr",
     RGB[..., ::-1]),
])
def test_colour_encodings_round_trip(encoding, rows, order, expected, padding):
    decoded = image_to_array(make_image(encoding, np.ascontiguousarray(rows), padding))
    assert decoded.order == order
    assert decoded.pixels.shape == (6, 10, 3) and decoded.pixels.dtype == np.uint8
    np.testing.assert_array_equal(decoded.pixels, expected)


@pytest.mark.parametrize("padding", [0, 3])
def test_mono8_is_gray_in_all_channels(padding):
    gray = RGB[..., 0]
    decoded = image_to_array(make_image("mono8", gray[..., None], padding))
    for channel in range(3):
        np.testing.assert_array_equal(decoded.pixels[..., channel], gray)


@pytest.mark.parametrize("encoding", ["mono16", "16UC1"])
@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("padding", [0, 3])
def test_16_bit_gray_keeps_the_high_byte(encoding, big_endian, padding):
    values = RNG.integers(0, 65536, (5, 7), dtype=np.uint16)
    raw = values.astype(">u2" if big_endian else "<u2").view(np.uint8).reshape(5, 7, 2)
    decoded = image_to_array(make_image(encoding, raw, padding, is_bigendian=big_endian))
    for channel in range(3):
        np.testing.assert_array_equal(decoded.pixels[..., channel], values >> 8)


def test_16_bit_byte_order_matters():
    raw = np.array([[[0x12, 0x34]]], np.uint8)  # one pixel, bytes 12 34
    assert image_to_array(make_image("mono16", raw, is_bigendian=True)).pixels[0, 0, 0] == 0x12
    assert image_to_array(make_image("mono16", raw, is_bigendian=False)).pixels[0, 0, 0] == 0x34


# Pairs of equal pixels, so 4:2:2 chroma subsampling loses nothing and the colour survives.
PAIRED_BGR = np.repeat(RNG.integers(30, 220, (6, 5, 3), dtype=np.uint8), 2, axis=1)


@pytest.mark.parametrize("encoding,to_yuv,from_yuv", [
    ("uyvy", cv2.COLOR_BGR2YUV_UYVY, cv2.COLOR_YUV2BGR_UYVY),
    ("yuv422", cv2.COLOR_BGR2YUV_UYVY, cv2.COLOR_YUV2BGR_UYVY),
    ("yuyv", cv2.COLOR_BGR2YUV_YUY2, cv2.COLOR_YUV2BGR_YUY2),
    ("yuv422_yuy2", cv2.COLOR_BGR2YUV_YUY2, cv2.COLOR_YUV2BGR_YUY2),
])
@pytest.mark.parametrize("padding", [0, 6])
def test_yuv422_encodings(encoding, to_yuv, from_yuv, padding):
    packed = cv2.cvtColor(PAIRED_BGR, to_yuv)
    assert packed.shape == (6, 10, 2)
    decoded = image_to_array(make_image(encoding, packed, padding))
    assert decoded.order == "bgr"
    np.testing.assert_array_equal(decoded.pixels, cv2.cvtColor(packed, from_yuv))
    assert np.abs(decoded.pixels.astype(int) - PAIRED_BGR).max() <= 4


def test_uyvy_and_yuyv_are_not_interchangeable():
    packed = cv2.cvtColor(PAIRED_BGR, cv2.COLOR_BGR2YUV_UYVY)
    wrong = image_to_array(make_image("yuyv", packed)).pixels
    assert np.abs(wrong.astype(int) - PAIRED_BGR).max() > 40


def test_raw_decoding_is_a_read_only_view_of_the_message():
    msg = make_image("rgb8", RGB, padding=2)
    pixels = image_to_array(msg).pixels
    assert np.shares_memory(pixels, np.frombuffer(msg.data, np.uint8))
    assert not pixels.flags.writeable


def test_decodes_a_message_that_went_through_serialization():
    msg = deserialize_message(serialize_message(make_image("bgr8", RGB, padding=4)), Image)
    np.testing.assert_array_equal(image_to_array(msg).pixels, RGB)


def error_message(msg, **kwargs):
    with pytest.raises(ImageDecodeError) as info:
        image_to_array(msg, **kwargs)
    return str(info.value)


def test_decode_errors_say_what_is_wrong():
    good = make_image("rgb8", RGB)
    text = error_message(Image(height=6, width=10, step=30, encoding="32FC1", data=good.data))
    assert "'32FC1'" in text and "rgb8" in text and "yuv422_yuy2" in text
    assert "empty" in error_message(Image(height=0, width=10, step=30, encoding="rgb8"))
    assert "empty" in error_message(Image(height=6, width=0, step=0, encoding="rgb8"))
    text = error_message(Image(height=6, width=10, step=29, encoding="rgb8", data=bytes(174)))
    assert "step 29" in text and "30 bytes" in text
    text = error_message(Image(height=6, width=10, step=30, encoding="rgb8", data=bytes(179)))
    assert "180" in text and "179" in text
    text = error_message(good, max_pixels=59)
    assert "60 pixels" in text and "59" in text
    assert image_to_array(good, max_pixels=60).pixels.shape == (6, 10, 3)
    text = error_message(Image(height=2, width=3, step=6, encoding="uyvy", data=bytes(12)))
    assert "even" in text
    assert issubclass(ImageDecodeError, ValueError)


def encode(ext, bgr):
    ok, buf = cv2.imencode(ext, bgr)
    assert ok
    return CompressedImage(header=HEADER, format=ext[1:], data=buf.tobytes())


SMOOTH_BGR = cv2.GaussianBlur(RNG.integers(0, 256, (48, 64, 3), dtype=np.uint8), (0, 0), 3)


def test_png_round_trip_is_exact():
    decoded = compressed_to_array(encode(".png", SMOOTH_BGR))
    assert decoded.order == "bgr"
    np.testing.assert_array_equal(decoded.pixels, SMOOTH_BGR)


def test_jpeg_round_trip_is_close():
    decoded = compressed_to_array(encode(".jpg", SMOOTH_BGR))
    assert decoded.pixels.shape == SMOOTH_BGR.shape
    assert np.abs(decoded.pixels.astype(int) - SMOOTH_BGR).mean() < 3.0


def test_gray_png_decodes_to_three_channels():
    decoded = compressed_to_array(encode(".png", SMOOTH_BGR[..., 1]))
    assert decoded.pixels.shape == (48, 64, 3)
    np.testing.assert_array_equal(decoded.pixels[..., 2], SMOOTH_BGR[..., 1])


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_compressed_size_limit(ext):
    msg = encode(ext, np.zeros((300, 400, 3), np.uint8))
    assert compressed_to_array(msg, max_pixels=120_000).pixels.shape == (300, 400, 3)
    with pytest.raises(ImageDecodeError, match="400x300"):
        compressed_to_array(msg, max_pixels=119_999)


PNG_HEADER_HUGE = (b"\x89PNG\r\n\x1a\n" + (13).to_bytes(4, "big") + b"IHDR"
                   + (100_000).to_bytes(4, "big") + (90_000).to_bytes(4, "big") + bytes(40))
JPEG_HEADER_HUGE = (b"\xff\xd8" + b"\xff\xe0" + (16).to_bytes(2, "big") + bytes(14)
                    + b"\xff\xff\xc2" + (17).to_bytes(2, "big") + b"\x08"
                    + (50_000).to_bytes(2, "big") + (60_000).to_bytes(2, "big") + bytes(40))


@pytest.mark.parametrize("data,size", [(PNG_HEADER_HUGE, "100000x90000"),
                                       (JPEG_HEADER_HUGE, "60000x50000")])
def test_oversized_header_is_refused_before_decoding(data, size):
    # The data after the header is junk: only the header check can name the size.
    with pytest.raises(ImageDecodeError, match=f"{size} has .* over the limit"):
        compressed_to_array(CompressedImage(format="png", data=data))


@pytest.mark.parametrize("data", [b"", b"not an image at all", bytes(range(256)) * 4,
                                  encode(".png", SMOOTH_BGR).data.tobytes()[:60]])
def test_corrupt_compressed_data(data):
    with pytest.raises(ImageDecodeError, match="cannot decode"):
        compressed_to_array(CompressedImage(format="jpeg", data=data))


def test_array_to_image_32fc1():
    depth = RNG.uniform(0.1, 20.0, (6, 10)).astype(np.float32)
    depth[0, 0] = np.nan
    msg = array_to_image(depth, "32FC1", HEADER)
    assert (msg.height, msg.width, msg.step, msg.encoding) == (6, 10, 40, "32FC1")
    assert msg.header == HEADER
    assert isinstance(msg.data, array.array)
    decoded = np.frombuffer(msg.data, ">f4" if msg.is_bigendian else "<f4").reshape(6, 10)
    np.testing.assert_array_equal(decoded, depth)  # NaN compares equal here


def test_array_to_image_bgr8_decodes_back_and_survives_serialization():
    view = np.ascontiguousarray(np.tile(RGB, (1, 2, 1)))[:, ::2]  # non-contiguous input
    msg = array_to_image(view, "bgr8", HEADER)
    assert msg.step == 30
    msg = deserialize_message(serialize_message(msg), Image)
    decoded = image_to_array(msg)
    assert decoded.order == "bgr"
    np.testing.assert_array_equal(decoded.pixels, view)
    assert msg.header.stamp.nanosec == 345


def test_array_to_image_rejects_mismatched_arrays():
    with pytest.raises(ValueError, match="float32"):
        array_to_image(np.zeros((4, 4), np.float64), "32FC1", HEADER)
    with pytest.raises(ValueError, match="uint8"):
        array_to_image(np.zeros((4, 4), np.uint8), "bgr8", HEADER)
    with pytest.raises(ValueError, match="mono8"):
        array_to_image(np.zeros((4, 4), np.uint8), "mono8", HEADER)


def test_fill_data_copies_into_a_fresh_array():
    source = np.arange(12, dtype=np.uint8).reshape(3, 4)
    first, second = Image(), Image()
    fill_data(first, source)
    fill_data(second, source)
    source[:] = 0
    assert first.data is not second.data
    assert first.data.tolist() == list(range(12))


def test_fill_data_keeps_the_fast_type_with_field_checks_on():
    # A checked setter walks a bytes value element by element (~50 ms per MB); it keeps an
    # array.array as it is. Timing belongs in benchmarks/, so the test checks the type.
    msg = Image(check_fields=True)
    payload = np.zeros(480 * 640 * 4, np.uint8)
    fill_data(msg, payload)
    assert isinstance(msg.data, array.array) and len(msg.data) == payload.size


def camera_info(**overrides):
    info = CameraInfo(header=HEADER, width=640, height=480, distortion_model="plumb_bob",
                      d=[-0.28, 0.07, 0.001, -0.0005, 0.0],
                      k=[525.0, 0.0, 319.5, 0.0, 526.0, 239.5, 0.0, 0.0, 1.0],
                      r=[0.999, -0.01, 0.0, 0.01, 0.999, 0.0, 0.0, 0.0, 1.0])
    for name, value in overrides.items():
        setattr(info, name, value)
    return info


def test_camera_info_to_intrinsics():
    intr = camera_info_to_intrinsics(camera_info())
    assert intr == Intrinsics(525.0, 526.0, 319.5, 239.5, 640, 480)


def test_camera_info_rejects_uncalibrated_and_broken():
    with pytest.raises(ValueError, match="uncalibrated"):
        camera_info_to_intrinsics(camera_info(k=[0.0] * 9))
    with pytest.raises(ValueError, match="non-finite"):
        camera_info_to_intrinsics(
            camera_info(k=[525.0, 0.0, math.nan, 0.0, 526.0, 239.5, 0.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="width"):
        camera_info_to_intrinsics(camera_info(width=0))


def test_camera_info_binning_and_roi():
    binned = camera_info_to_intrinsics(camera_info(binning_x=2, binning_y=2))
    assert binned == Intrinsics(262.5, 263.0, 159.5, 119.5, 320, 240)
    info = camera_info()
    info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height = 100, 40, 320, 200
    cropped = camera_info_to_intrinsics(info)
    assert cropped == Intrinsics(525.0, 526.0, 219.5, 199.5, 320, 200)


def test_intrinsics_to_camera_info_same_camera_keeps_distortion():
    template = camera_info()
    header = Header(frame_id="depth")
    info = intrinsics_to_camera_info(camera_info_to_intrinsics(template), header,
                                     camera_info_to_calibration(template))
    assert info.header is header
    assert (info.width, info.height) == (640, 480)
    assert list(info.k) == list(template.k)
    assert list(info.p) == [525.0, 0.0, 319.5, 0.0, 0.0, 526.0, 239.5, 0.0, 0.0, 0.0, 1.0, 0.0]
    assert info.distortion_model == "plumb_bob" and list(info.d) == list(template.d)
    assert list(info.r) == list(template.r)
    # Rescaled from that calibration: distortion acts on normalised coordinates, so it stays.
    half = camera_info_to_intrinsics(template).scaled(320, 240)
    info = intrinsics_to_camera_info(half, header, camera_info_to_calibration(template))
    assert (info.width, info.height) == (320, 240)
    assert list(info.k) == pytest.approx([262.5, 0.0, 159.5, 0.0, 263.0, 119.5, 0.0, 0.0, 1.0])
    assert list(info.d) == list(template.d)


@pytest.mark.parametrize("template", [None, camera_info(), camera_info(k=[0.0] * 9)])
def test_intrinsics_to_camera_info_other_camera_has_zero_distortion(template):
    fallback = Intrinsics.from_fov(640, 480, 70.0)
    info = intrinsics_to_camera_info(
        fallback, HEADER, None if template is None else camera_info_to_calibration(template))
    assert info.distortion_model == "plumb_bob" and list(info.d) == [0.0] * 5
    assert list(info.r) == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    assert camera_info_to_intrinsics(info) == fallback


# Bytes per pixel as sensor_msgs/image_encodings defines them; used only to steer half of
# the examples towards well-formed messages so that both outcomes are exercised.
BYTES_PER_PIXEL = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "mono16": 2,
                   "16UC1": 2, "yuv422": 2, "uyvy": 2, "yuv422_yuy2": 2, "yuyv": 2}
ANY_ENCODING = st.one_of(st.sampled_from(SUPPORTED_ENCODINGS),
                         st.sampled_from(["", "RGB8", "32FC1", "bayer_rggb8", "mono8 "]),
                         st.text(max_size=12))
ANY_SIZE = st.one_of(st.integers(0, 9), st.integers(0, 2**32 - 1))


@st.composite
def well_formed_images(draw):
    encoding = draw(st.sampled_from(SUPPORTED_ENCODINGS))
    width, height = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    step = width * BYTES_PER_PIXEL[encoding] + draw(st.integers(0, 5))
    return Image(height=height, width=width, step=step, encoding=encoding,
                 is_bigendian=draw(st.booleans()),
                 data=draw(st.binary(min_size=height * step, max_size=height * step)))


@st.composite
def arbitrary_images(draw):
    height, width = draw(ANY_SIZE), draw(ANY_SIZE)
    step = draw(st.one_of(st.integers(0, 40), st.integers(0, 2**32 - 1)))
    length = draw(st.integers(0, 400))
    if height * step <= 400 and draw(st.booleans()):
        length = height * step
    return Image(height=height, width=width, step=step, encoding=draw(ANY_ENCODING),
                 is_bigendian=draw(st.booleans()),
                 data=draw(st.binary(min_size=length, max_size=length)))


@settings(max_examples=400, deadline=None)
@given(msg=st.one_of(well_formed_images(), arbitrary_images()))
def test_arbitrary_messages_raise_only_image_decode_error(msg):
    try:
        decoded = image_to_array(msg)
    except ImageDecodeError:
        event("rejected")
        return
    event("decoded")
    assert decoded.pixels.shape == (msg.height, msg.width, 3)
    assert decoded.pixels.dtype == np.uint8 and decoded.order in ("bgr", "rgb")
    np.ascontiguousarray(decoded.pixels)  # every byte the view covers is really there
