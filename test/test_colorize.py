"""Fixed-range depth colouring and the hand-built colour tables."""

import cv2
import numpy as np
import pytest

from depth_anything_ros.geometry.colorize import Colorizer, colormap_rgb, COLORMAPS

OPENCV_MAPS = {"turbo": cv2.COLORMAP_TURBO, "inferno": cv2.COLORMAP_INFERNO,
               "viridis": cv2.COLORMAP_VIRIDIS, "jet": cv2.COLORMAP_JET}


def test_colormap_names():
    assert COLORMAPS == ("turbo", "inferno", "viridis", "jet", "gray")


@pytest.mark.parametrize("name", sorted(OPENCV_MAPS))
def test_tables_match_opencv_within_seven_levels(name):
    ramp = np.arange(256, dtype=np.uint8).reshape(1, 256)
    reference_rgb = cv2.applyColorMap(ramp, OPENCV_MAPS[name])[0, :, ::-1].astype(int)
    ours = colormap_rgb(name).astype(int)
    assert ours.shape == (256, 3)
    assert np.abs(ours - reference_rgb).max() <= 7
    assert np.abs(ours - reference_rgb).mean() < 2.0


def test_gray_is_the_identity_ramp():
    np.testing.assert_array_equal(colormap_rgb("gray"), np.repeat(np.arange(256)[:, None], 3, 1))


def test_level_mapping_and_bgr_order():
    colorize = Colorizer("turbo", 0.5, 8.0)
    lut_bgr = colormap_rgb("turbo")[:, ::-1]
    depth = np.array([[0.5, 8.0, 0.5 + 7.5 * 100 / 255, 4.25]], np.float32)
    out = colorize(depth)
    assert out.shape == (1, 4, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, 0], lut_bgr[0])
    np.testing.assert_array_equal(out[0, 1], lut_bgr[255])
    np.testing.assert_array_equal(out[0, 2], lut_bgr[100])
    np.testing.assert_array_equal(out[0, 3], lut_bgr[128])  # 127.5 rounds up
    # Turbo's near end is dark blue: blue is the largest channel in BGR slot 0.
    assert out[0, 0, 0] > out[0, 0, 2]


def test_range_is_fixed_not_per_frame():
    colorize = Colorizer("viridis", 0.3, 10.0)
    alone = colorize(np.full((48, 64), 3.0, np.float32))
    mixed_depth = np.full((48, 64), 3.0, np.float32)
    mixed_depth[:, 32:] = np.random.default_rng(0).uniform(0.3, 1.0, (48, 32))
    mixed = colorize(mixed_depth)
    np.testing.assert_array_equal(mixed[:, :32], alone[:, :32])
    assert len(np.unique(alone.reshape(-1, 3), axis=0)) == 1
    assert np.any(mixed[:, 32:] != alone[:, 32:])


def test_invalid_and_out_of_range_are_black():
    colorize = Colorizer("inferno", 1.0, 5.0)
    depth = np.array([[np.nan, np.inf, -np.inf, 0.0, 0.99, 5.01, 1e30, 3.0]], np.float32)
    out = colorize(depth)
    np.testing.assert_array_equal(out[0, :7], 0)
    assert out[0, 7].any()
    # Black is reserved: no valid level of these maps is pure black.
    for name in ("turbo", "viridis", "jet"):
        assert colormap_rgb(name).any(axis=1).all()


def test_invert_swaps_the_ends():
    depth = np.array([[1.0, 9.0]], np.float32)
    normal = Colorizer("jet", 1.0, 9.0)(depth)
    inverted = Colorizer("jet", 1.0, 9.0, invert=True)(depth)
    np.testing.assert_array_equal(normal[0, 0], inverted[0, 1])
    np.testing.assert_array_equal(normal[0, 1], inverted[0, 0])


def test_buffers_follow_the_image_size_and_dtype():
    colorize = Colorizer("gray", 0.0, 255.0)
    small = colorize(np.full((2, 3), 10.0, np.float32))
    big = colorize(np.full((480, 640), 200.0, np.float64))
    assert small.shape == (2, 3, 3) and big.shape == (480, 640, 3)
    assert (small == 10).all() and (big == 200).all()
    assert small is not colorize(np.full((2, 3), 10.0, np.float32))  # callers may keep results


def test_rejects_bad_configuration_and_input():
    with pytest.raises(ValueError, match="turbo, inferno, viridis, jet, gray"):
        Colorizer("rainbow", 0.0, 1.0)
    with pytest.raises(ValueError, match="below max_depth"):
        Colorizer("turbo", 2.0, 2.0)
    with pytest.raises(ValueError, match="finite"):
        Colorizer("turbo", 0.0, float("inf"))
    with pytest.raises(ValueError, match="2-D"):
        Colorizer("turbo", 0.0, 1.0)(np.zeros((2, 2, 1), np.float32))
