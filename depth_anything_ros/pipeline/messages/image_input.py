"""Camera image messages to pixels, without cv_bridge and without the message types.

The functions read the fields of sensor_msgs/Image and CompressedImage by name, so the
same code serves rclpy messages in the node and deserialised rosbag2 messages in tools
that run without ROS. cv_bridge is not installable from PyPI and its Python layer breaks
on NumPy 2 (ros-perception/vision_opencv#535). Decoding returns read-only views into the
message buffer wherever the layout allows, and reports the colour order instead of
converting it: the engine can take either order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.lib.stride_tricks import as_strided

# 2^24 (16.8 M, e.g. 5472x3066): large enough for any camera this node is meant for, small
# enough that a corrupt or hostile width*height cannot make us allocate gigabytes
# downstream. The max_pixels parameter's default too.
DEFAULT_MAX_PIXELS = 1 << 24

# encoding -> bytes per pixel. Names as in sensor_msgs/image_encodings.hpp.
_BYTES_PER_PIXEL = {
    "rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4,
    "mono8": 1, "mono16": 2, "16UC1": 2,
    "yuv422": 2, "uyvy": 2, "yuv422_yuy2": 2, "yuyv": 2,
}
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_BYTES_PER_PIXEL)

_YUV_TO_BGR = {
    "yuv422": cv2.COLOR_YUV2BGR_UYVY, "uyvy": cv2.COLOR_YUV2BGR_UYVY,
    "yuv422_yuy2": cv2.COLOR_YUV2BGR_YUY2, "yuyv": cv2.COLOR_YUV2BGR_YUY2,
}


# Why an image was refused: one diagnostics counter each, so a dashboard can tell a
# misconfigured camera (encoding) from a corrupt link (data_length, compressed_corrupt).
REJECT_ENCODING = "encoding"
REJECT_SIZE = "size"                    # zero width or height, odd width for 4:2:2
REJECT_STEP = "step"
REJECT_DATA_LENGTH = "data_length"
REJECT_MAX_PIXELS = "max_pixels"
REJECT_COMPRESSED = "compressed_corrupt"
IMAGE_REJECTIONS: tuple[str, ...] = (REJECT_ENCODING, REJECT_SIZE, REJECT_STEP, REJECT_DATA_LENGTH,
                                     REJECT_MAX_PIXELS, REJECT_COMPRESSED)


class ImageDecodeError(ValueError):
    """An incoming image cannot be turned into pixels.

    The message says what to fix and ``kind`` (one of IMAGE_REJECTIONS) which rule it broke.
    """

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class DecodedImage:
    """(H, W, 3) uint8 pixels in ``order`` ('bgr' or 'rgb').

    ``pixels`` may be a read-only, non-contiguous view into the message (e.g. mono8 is the
    gray plane repeated by a zero stride, rgba8 skips the alpha byte); call
    ``np.ascontiguousarray`` before handing it to something that needs packed memory.
    """

    pixels: np.ndarray
    order: str


def image_to_array(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Decode a raw sensor_msgs/Image, honouring ``step`` padding and ``is_bigendian``.

    16-bit gray (mono16, 16UC1) keeps its high byte (value >> 8): a fixed rule keeps the
    network's input brightness stable from frame to frame, where per-frame max scaling would
    make the predicted depth flicker. Sensors that fill only the low 10-12 bits come out dark.
    """
    encoding = msg.encoding
    bpp = _BYTES_PER_PIXEL.get(encoding)
    if bpp is None:
        raise ImageDecodeError(
            f"unsupported image encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}",
            REJECT_ENCODING)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height == 0 or width == 0:
        raise ImageDecodeError(f"image is empty ({width}x{height})", REJECT_SIZE)
    if height * width > max_pixels:
        raise ImageDecodeError(
            f"image {width}x{height} has {height * width} pixels, over the limit of {max_pixels} "
            "(parameter max_pixels)", REJECT_MAX_PIXELS)
    if step < width * bpp:
        raise ImageDecodeError(
            f"step {step} is shorter than a row of {width} {encoding} pixels ({width * bpp} bytes)",
            REJECT_STEP)
    data = np.frombuffer(msg.data, dtype=np.uint8)
    if data.size != height * step:
        raise ImageDecodeError(
            f"{encoding} image {width}x{height} with step {step} needs height*step = "
            f"{height * step} bytes of data, got {data.size}", REJECT_DATA_LENGTH)

    if encoding in ("rgb8", "bgr8", "rgba8", "bgra8"):
        pixels = as_strided(data, shape=(height, width, 3), strides=(step, bpp, 1),
                            writeable=False)
        return DecodedImage(pixels, encoding[:3])
    if encoding == "mono8":
        return DecodedImage(_gray_as_three_channels(data, height, width, step, bpp), "bgr")
    if encoding in ("mono16", "16UC1"):
        # The high byte comes first in big-endian data and second in little-endian data.
        high = data if msg.is_bigendian else data[1:]
        return DecodedImage(_gray_as_three_channels(high, height, width, step, bpp), "bgr")
    if width % 2:
        raise ImageDecodeError(
            f"{encoding} packs two pixels per 4 bytes, so its width must be even, got {width}",
            REJECT_SIZE)
    packed = as_strided(data, shape=(height, width, 2), strides=(step, 2, 1), writeable=False)
    return DecodedImage(cv2.cvtColor(packed, _YUV_TO_BGR[encoding]), "bgr")


def _gray_as_three_channels(data: np.ndarray, height: int, width: int, step: int,
                            bpp: int) -> np.ndarray:
    """Return the gray byte of each pixel seen three times through a zero channel stride."""
    return as_strided(data, shape=(height, width, 3), strides=(step, bpp, 0), writeable=False)


def check_compressed_header(msg: Any,
                            max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Refuse what a PNG or JPEG header already gives away, without decoding.

    That is, an image over ``max_pixels``. Cheap enough for a subscription callback, so an
    oversized frame is refused before it is queued, let alone decoded.
    """
    size = _encoded_size(memoryview(np.frombuffer(msg.data, dtype=np.uint8)))
    if size is not None and size[0] * size[1] > max_pixels:
        raise ImageDecodeError(
            f"compressed image {size[0]}x{size[1]} has {size[0] * size[1]} pixels, "
            f"over the limit of {max_pixels} (parameter max_pixels)", REJECT_MAX_PIXELS)


def silence_decoder_logs() -> None:
    """Stop OpenCV's decoders from printing a line for every broken image.

    A caller that reports undecodable images itself, rate-limited, would otherwise have its
    rate limit defeated (PNG header errors print at ERROR level). OpenCV 5 keeps the level
    under ``cv2.utils.logging``; 4.x, such as Ubuntu 24.04's 4.6, only as ``cv2.setLogLevel``
    (0 = silent). libpng's own messages on stderr are beyond its reach.
    """
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is not None:
        logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    else:
        cv2.setLogLevel(0)


def compressed_to_array(msg: Any,
                        max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Decode JPEG/PNG (whatever OpenCV recognises) to BGR.

    The header is checked first (``check_compressed_header``) so an oversized image is
    refused before decoding allocates it.
    """
    check_compressed_header(msg, max_pixels)
    data = np.frombuffer(msg.data, dtype=np.uint8)
    try:
        pixels = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    except cv2.error as exc:
        pixels = None
        reason = f": {exc}"
    else:
        reason = ""
    if pixels is None:
        raise ImageDecodeError(
            f"cannot decode compressed image (format {msg.format!r}, {data.size} bytes){reason}; "
            "expected JPEG or PNG data", REJECT_COMPRESSED)
    if pixels.shape[0] * pixels.shape[1] > max_pixels:
        raise ImageDecodeError(
            f"compressed image {pixels.shape[1]}x{pixels.shape[0]} is over the limit of "
            f"{max_pixels} pixels (parameter max_pixels)", REJECT_MAX_PIXELS)
    return DecodedImage(pixels, "bgr")


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers carry the image size; C4 (DHT), C8 (JPG) and CC (DAC) do not.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Real files reach the frame header within a few dozen segments (APPn, DQT, DHT); the cap
# bounds the walk over crafted data made of thousands of tiny segments.
_JPEG_MAX_SEGMENTS = 256


def _encoded_size(data: memoryview) -> tuple[int, int] | None:
    """(width, height) from a PNG IHDR or JPEG SOF header; None when not found."""
    if bytes(data[:8]) == _PNG_SIGNATURE and len(data) >= 24 and bytes(data[12:16]) == b"IHDR":
        return (int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"))
    if bytes(data[:2]) != b"\xff\xd8":
        return None
    pos = 2
    for _ in range(_JPEG_MAX_SEGMENTS):
        if pos + 9 > len(data):
            return None
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in _JPEG_SOF:
            return (int.from_bytes(data[pos + 7:pos + 9], "big"),
                    int.from_bytes(data[pos + 5:pos + 7], "big"))
        if marker == 0xDA:  # start of scan: no frame header before the image data
            return None
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length field
            pos += 2
            continue
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return None
