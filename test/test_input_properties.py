"""Property-based fuzzing of everything that turns untrusted messages into numbers.

Whatever arrives, a conversion either returns something well-formed or raises the one
documented error with the reason category the node counts it under; nothing else may
escape (an IndexError or a cv2.error would end up as a skipped frame at best).
"""

from __future__ import annotations

import math

import cv2
from hypothesis import event, given, HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
import numpy as np
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header

from depth_anything_ros.geometry.calibration import calibration_intrinsics
from depth_anything_ros.geometry.intrinsics import Intrinsics
from depth_anything_ros.pipeline.messages.image_input import (_encoded_size,
                                                              check_compressed_header,
                                                              compressed_to_array, IMAGE_REJECTIONS,
                                                              image_to_array, ImageDecodeError,
                                                              REJECT_COMPRESSED, REJECT_DATA_LENGTH,
                                                              REJECT_ENCODING, REJECT_MAX_PIXELS,
                                                              REJECT_SIZE, REJECT_STEP,
                                                              SUPPORTED_ENCODINGS)
from depth_anything_ros.ros.cloud_msg import CloudBuilder, RGB_OFFSET
from depth_anything_ros.ros.codec import camera_info_to_calibration, intrinsics_to_camera_info

HEADER = Header(frame_id="camera_optical")
BYTES_PER_PIXEL = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "mono16": 2,
                   "16UC1": 2, "yuv422": 2, "uyvy": 2, "yuv422_yuy2": 2, "yuyv": 2}
PACKED_422 = {"yuv422", "uyvy", "yuv422_yuy2", "yuyv"}


def camera_info_to_intrinsics(msg):
    """Return what the node derives from a CameraInfo message: its calibration's intrinsics."""
    return calibration_intrinsics(camera_info_to_calibration(msg))


# --- raw images: the rejection category is the first rule broken ------------------------

def expected_rejection(msg: Image, max_pixels: int) -> str | None:
    """Apply the documented order of checks, written out independently of image_input."""
    bpp = BYTES_PER_PIXEL.get(msg.encoding)
    if bpp is None:
        return REJECT_ENCODING
    if msg.width == 0 or msg.height == 0:
        return REJECT_SIZE
    if msg.width * msg.height > max_pixels:
        return REJECT_MAX_PIXELS
    if msg.step < msg.width * bpp:
        return REJECT_STEP
    if len(msg.data) != msg.height * msg.step:
        return REJECT_DATA_LENGTH
    if msg.encoding in PACKED_422 and msg.width % 2:
        return REJECT_SIZE
    return None


@st.composite
def raw_images(draw):
    """Draw a well-formed image, then (mostly) one field broken.

    Fields are broken in one of the ways cameras, bridges and bit errors break them.
    """
    encoding = draw(st.sampled_from(SUPPORTED_ENCODINGS))
    width, height = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    step = width * BYTES_PER_PIXEL[encoding] + draw(st.integers(0, 4))
    fields = {"encoding": encoding, "width": width, "height": height, "step": step,
              "is_bigendian": draw(st.booleans())}
    length = height * step
    breakage = draw(st.sampled_from(["none", "encoding", "width", "height", "step", "length",
                                     "huge"]))
    if breakage == "encoding":
        fields["encoding"] = draw(st.one_of(st.sampled_from(["32FC1", "bayer_rggb8", "RGB8", "",
                                                             "mono8 ", "8UC3"]),
                                            st.text(max_size=10)))
    elif breakage in ("width", "height"):
        fields[breakage] = draw(st.integers(0, 40))
    elif breakage == "step":
        fields["step"] = draw(st.integers(0, 60))
    elif breakage == "length":
        length = draw(st.integers(0, 2 * length + 8))
    elif breakage == "huge":
        fields["width"], fields["height"] = (draw(st.integers(1, 2**31 - 1)),
                                             draw(st.integers(1, 2**31 - 1)))
    return Image(**fields, data=draw(st.binary(min_size=length, max_size=length)))


@settings(max_examples=600, deadline=None)
@given(msg=raw_images(), max_pixels=st.integers(1, 400))
def test_raw_images_are_rejected_in_the_category_of_the_first_broken_rule(msg, max_pixels):
    expected = expected_rejection(msg, max_pixels)
    try:
        decoded = image_to_array(msg, max_pixels)
    except ImageDecodeError as exc:
        event(f"rejected: {exc.kind}")
        assert exc.kind == expected, (exc.kind, str(exc))
        assert exc.kind in IMAGE_REJECTIONS
        return
    event("decoded")
    assert expected is None
    assert decoded.pixels.shape == (msg.height, msg.width, 3)
    assert decoded.pixels.dtype == np.uint8 and decoded.order in ("bgr", "rgb")
    np.ascontiguousarray(decoded.pixels)  # every byte the view covers is really there


# --- compressed images: random bytes and damaged real files -----------------------------

def _encoded(ext: str, height: int, width: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    ok, buf = cv2.imencode(ext, rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    assert ok
    return buf.tobytes()


@st.composite
def damaged_files(draw):
    data = bytearray(_encoded(draw(st.sampled_from([".png", ".jpg"])), draw(st.integers(1, 24)),
                              draw(st.integers(1, 24)), draw(st.integers(0, 3))))
    for _ in range(draw(st.integers(0, 4))):
        how = draw(st.sampled_from(["overwrite", "truncate", "insert"]))
        position = draw(st.integers(0, max(0, len(data) - 1)))
        if how == "overwrite" and data:
            data[position] = draw(st.integers(0, 255))
        elif how == "truncate":
            del data[position:]
        else:
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


compressed_payloads = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda tail: b"\x89PNG\r\n\x1a\n" + tail, st.binary(max_size=100)),
    st.builds(lambda tail: b"\xff\xd8" + tail, st.binary(max_size=100)),
    damaged_files())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=compressed_payloads, max_pixels=st.integers(1, 600))
def test_compressed_bytes_decode_or_raise_a_classified_error(data, max_pixels):
    msg = CompressedImage(format="jpeg", data=data)
    header_size = _encoded_size(memoryview(data))
    try:
        check_compressed_header(msg, max_pixels)
    except ImageDecodeError as exc:
        assert exc.kind == REJECT_MAX_PIXELS
        assert header_size is not None and header_size[0] * header_size[1] > max_pixels
        event("header over max_pixels")
        return
    try:
        decoded = compressed_to_array(msg, max_pixels)
    except ImageDecodeError as exc:
        event(f"rejected: {exc.kind}")
        assert exc.kind in (REJECT_COMPRESSED, REJECT_MAX_PIXELS)
        return
    event("decoded")
    height, width = decoded.pixels.shape[:2]
    assert decoded.pixels.shape == (height, width, 3) and decoded.pixels.dtype == np.uint8
    assert height * width <= max_pixels
    if header_size is not None:
        # The size the header check read is the one the decoder used.
        assert header_size == (width, height)


# --- CameraInfo -----------------------------------------------------------------------

ANY_FLOAT = st.one_of(st.floats(-2000.0, 2000.0),
                      st.sampled_from([0.0, math.nan, math.inf, -math.inf, 1e-300, 1e300]))


@st.composite
def camera_infos(draw):
    info = CameraInfo(width=draw(st.integers(0, 5000)), height=draw(st.integers(0, 5000)),
                      binning_x=draw(st.integers(0, 9)), binning_y=draw(st.integers(0, 9)))
    if draw(st.booleans()):  # a plausible calibration, so both outcomes are exercised
        fx, fy = draw(st.floats(1.0, 3000.0)), draw(st.floats(1.0, 3000.0))
        info.k = [fx, 0.0, draw(st.floats(0.0, 5000.0)), 0.0, fy, draw(st.floats(0.0, 5000.0)),
                  0.0, 0.0, 1.0]
    else:
        info.k = draw(st.lists(ANY_FLOAT, min_size=9, max_size=9))
    if draw(st.booleans()):
        corner = st.integers(0, 3000)
        info.roi.x_offset, info.roi.y_offset = draw(corner), draw(corner)
        info.roi.width, info.roi.height = draw(corner), draw(corner)
    return info


@settings(max_examples=500, deadline=None)
@given(info=camera_infos())
def test_camera_info_gives_usable_intrinsics_or_a_value_error(info):
    try:
        intr = camera_info_to_intrinsics(info)
    except ValueError:
        event("rejected")
        return
    event("accepted")
    assert math.isfinite(intr.fx) and intr.fx > 0 and math.isfinite(intr.fy) and intr.fy > 0
    assert math.isfinite(intr.cx) and math.isfinite(intr.cy)
    assert intr.width >= 1 and intr.height >= 1
    # What the node republishes describes the same camera.
    again = camera_info_to_intrinsics(
        intrinsics_to_camera_info(intr, HEADER, camera_info_to_calibration(info)))
    assert again == intr


# --- PointCloud2 ----------------------------------------------------------------------

points_grids = arrays(np.float32, st.tuples(st.integers(1, 9), st.integers(1, 9), st.just(3)),
                      elements=st.floats(width=32, allow_nan=True, allow_infinity=True))


@settings(max_examples=200, deadline=None)
@given(points=points_grids, coloured=st.booleans(), data=st.data())
def test_clouds_carry_every_point_and_colour_bit_exactly(points, coloured, data):
    colors = (data.draw(arrays(np.uint8, points.shape)) if coloured else None)
    builder = CloudBuilder()
    msg = deserialize_message(serialize_message(builder.build(points, HEADER, colors)),
                              PointCloud2)
    height, width = points.shape[:2]
    assert (msg.height, msg.width, msg.is_dense, msg.is_bigendian) == (height, width, False, False)
    assert msg.row_step == width * msg.point_step
    raw = np.frombuffer(bytes(msg.data), np.uint8).reshape(height, width, msg.point_step)
    offsets = {f.name: f.offset for f in msg.fields}
    for axis, name in enumerate("xyz"):
        got = raw[..., offsets[name]:offsets[name] + 4].copy().view("<u4")[..., 0]
        np.testing.assert_array_equal(got, points[..., axis].view(np.uint32))  # NaN payloads too
    if colors is None:
        assert msg.point_step == 16 and "rgb" not in offsets
    else:
        assert offsets["rgb"] == RGB_OFFSET
        np.testing.assert_array_equal(raw[..., RGB_OFFSET:RGB_OFFSET + 3], colors)
        assert not raw[..., RGB_OFFSET + 3].any()


# --- geometry round trips on the intrinsics the node derives -------------------------

@settings(max_examples=300, deadline=None)
@given(fx=st.floats(1.0, 5000.0), fy=st.floats(1.0, 5000.0), cx=st.floats(-100.0, 5000.0),
       cy=st.floats(-100.0, 5000.0), width=st.integers(1, 5000), height=st.integers(1, 5000),
       new_width=st.integers(1, 5000), new_height=st.integers(1, 5000))
def test_scaling_intrinsics_there_and_back_is_the_identity(fx, fy, cx, cy, width, height,
                                                           new_width, new_height):
    intr = Intrinsics(fx, fy, cx, cy, width, height)
    back = intr.scaled(new_width, new_height).validate().scaled(width, height)
    assert (back.width, back.height) == (width, height)
    for a, b in ((back.fx, fx), (back.fy, fy), (back.cx, cx), (back.cy, cy)):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
