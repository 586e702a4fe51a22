"""Rectification against planes rendered through distorting lenses by this file's renderer.

The renderer works backwards from the raw (distorted) image: every raw pixel centre is
undistorted to its ray with OpenCV's point functions, the ray is intersected with a plane,
and the pixel stores the hit's z, which is what a depth camera behind that lens would
report. Rectifying that depth image and back-projecting it as a pinhole camera must then
put every point back on the plane; without rectification the points must miss it.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import cv2
import numpy as np
import pytest

from depth_anything_ros.geometry.calibration import (
    calibration_intrinsics, CameraCalibration, IDENTITY_3X3)
from depth_anything_ros.geometry.rays import RayGrid
from depth_anything_ros.geometry.rectify import (
    needs_rectification, rectification_maps, rectified_calibration, rectified_intrinsics,
    Rectifier, UnknownDistortionModel)

WIDTH, HEIGHT = 640, 480
K_VGA = (500.0, 0.0, 319.5, 0.0, 500.0, 239.5, 0.0, 0.0, 1.0)
P_VGA = (500.0, 0.0, 319.5, 0.0, 0.0, 500.0, 239.5, 0.0, 0.0, 0.0, 1.0, 0.0)
LENSES = {
    "plumb_bob": (-0.3, 0.1, 0.001, -0.0015, 0.0),
    "rational_polynomial": (-0.3, 0.1, 0.001, -0.0015, 0.0, 0.05, 0.02, 0.0),
    "equidistant": (0.02, -0.01, 0.003, -0.0005),
}
PLANE_DISTANCE_M = 2.0
# (degrees about y, degrees about x) of the plane's normal; the first is fronto-parallel.
TILTS = [(0.0, 0.0), (20.0, 0.0), (20.0, 15.0)]
TOLERANCE = 0.005  # point-to-plane distance / range
# Tight enough that the renderer's own error is far below TOLERANCE.
UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 200, 1e-15)


def calibration(model: str, **changes) -> CameraCalibration:
    cal = CameraCalibration(width=WIDTH, height=HEIGHT, k=K_VGA, d=LENSES[model],
                            r=IDENTITY_3X3, p=P_VGA, distortion_model=model)
    return dataclasses.replace(cal, **changes)


def k_matrix(cal: CameraCalibration) -> np.ndarray:
    return np.asarray(cal.k, np.float64).reshape(3, 3)


def pixel_centres(width: int, height: int) -> np.ndarray:
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    return np.stack([u, v], axis=-1).reshape(-1, 1, 2)


@functools.lru_cache(maxsize=len(LENSES))
def raw_rays(cal: CameraCalibration) -> np.ndarray:
    """(H, W, 3) ray (x, y, 1) through every raw pixel centre; cached, so read-only."""
    pixels = pixel_centres(cal.width, cal.height)
    k, d = k_matrix(cal), np.asarray(cal.d, np.float64)
    if cal.distortion_model == "equidistant":
        try:
            xy = cv2.fisheye.undistortPoints(pixels, k, d, criteria=UNDISTORT_CRITERIA)
        except cv2.error:  # OpenCV before 4.6 (Ubuntu 22.04's 4.5.4): its fixed iterations
            xy = cv2.fisheye.undistortPoints(pixels, k, d)
    elif hasattr(cv2, "undistortPointsIter"):  # OpenCV 4.x: criteria only through this one
        xy = cv2.undistortPointsIter(pixels, k, d, np.eye(3), np.eye(3), UNDISTORT_CRITERIA)
    else:  # OpenCV 5 folded it into undistortPoints
        xy = cv2.undistortPoints(pixels, k, d, criteria=UNDISTORT_CRITERIA)
    xy = xy.reshape(cal.height, cal.width, 2)
    rays = np.concatenate([xy, np.ones_like(xy[..., :1])], axis=-1)
    rays.flags.writeable = False
    return rays


def distort(cal: CameraCalibration, rays: np.ndarray) -> np.ndarray:
    """Pixel coordinates of (N, 3) rays through the lens: the renderer's inverse."""
    k, d = k_matrix(cal), np.asarray(cal.d, np.float64)
    if cal.distortion_model == "equidistant":
        xy = (rays[:, :2] / rays[:, 2:]).reshape(-1, 1, 2)
        return cv2.fisheye.distortPoints(xy, k, d).reshape(-1, 2)
    zero = np.zeros(3)
    return cv2.projectPoints(rays.reshape(-1, 1, 3), zero, zero, k, d)[0].reshape(-1, 2)


def plane(tilt: tuple[float, float]) -> tuple[np.ndarray, float]:
    """Return unit normal n and offset c of the plane n.X = c through (0, 0, 2 m)."""
    about_y, about_x = (math.radians(a) for a in tilt)
    normal = np.array([math.sin(about_y) * math.cos(about_x), math.sin(about_x),
                       math.cos(about_y) * math.cos(about_x)])
    return normal, PLANE_DISTANCE_M * normal[2]


def render_raw_depth(cal: CameraCalibration, tilt: tuple[float, float]) -> np.ndarray:
    normal, offset = plane(tilt)
    return (offset / (raw_rays(cal) @ normal)).astype(np.float32)


def plane_errors(points: np.ndarray, tilt: tuple[float, float]) -> np.ndarray:
    """Point-to-plane distance / range of every finite point of an (H, W, 3) cloud."""
    pts = points.reshape(-1, 3).astype(np.float64)
    pts = pts[np.isfinite(pts).all(axis=1)]
    normal, offset = plane(tilt)
    return np.abs(pts @ normal - offset) / np.linalg.norm(pts, axis=1)


@pytest.mark.parametrize("model", LENSES)
def test_the_renderer_inverts_the_lens(model):
    cal = calibration(model)
    rays = raw_rays(cal).reshape(-1, 3)
    back = distort(cal, rays)
    assert np.abs(back - pixel_centres(WIDTH, HEIGHT).reshape(-1, 2)).max() < 1e-4
    # A real lens, not the identity: the raw corner sees much more than a pinhole would.
    corner = np.hypot(*rays[0, :2]) / np.hypot(-K_VGA[2] / K_VGA[0], -K_VGA[5] / K_VGA[4])
    assert corner > 1.2


@pytest.mark.parametrize("tilt", TILTS)
@pytest.mark.parametrize("model", LENSES)
def test_rectified_depth_back_projects_onto_the_plane(model, tilt):
    cal = calibration(model)
    raw = render_raw_depth(cal, tilt)
    if tilt != TILTS[0]:
        assert np.ptp(raw) > 0.5  # the check below is not the trivial z = const
    rectified = Rectifier().rectify(raw, cal)
    valid = np.isfinite(rectified) & (rectified > 0)
    assert valid.mean() > 0.99
    assert valid[[0, 0, -1, -1], [0, -1, 0, -1]].all()  # out to the corners
    rect_errors = plane_errors(RayGrid(rectified_intrinsics(cal)).points(rectified), tilt)
    raw_errors = plane_errors(RayGrid(calibration_intrinsics(cal)).points(raw), tilt)
    print(f"\n{model} tilt {tilt}: point-to-plane / range, max "
          f"rectified {rect_errors.max():.2e}, unrectified {raw_errors.max():.2e}")
    assert rect_errors.size == valid.sum()
    assert rect_errors.max() <= TOLERANCE
    if tilt != TILTS[0]:
        # On a fronto-parallel plane the pinhole error is all sideways, so it stays on the
        # plane; a tilted one shows it (4.5 % at 20 degrees about y for these lenses).
        assert raw_errors.max() > 0.04
        assert raw_errors.max() > 100 * rect_errors.max()


@pytest.mark.parametrize("model", LENSES)
def test_maps_follow_r_and_p(model):
    # A stereo right camera: rotated 3 degrees about x, a new focal length and centre, and
    # a baseline in P[3], which rectification must ignore.
    angle = math.radians(3.0)
    r = (1.0, 0.0, 0.0, 0.0, math.cos(angle), -math.sin(angle),
         0.0, math.sin(angle), math.cos(angle))
    p = (450.0, 0.0, 330.0, -27.0, 0.0, 450.0, 230.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    cal = calibration(model, r=r, p=p)
    map1, map2 = rectification_maps(cal)
    # CV_16SC2: integer position, then a 5+5 bit fraction index (32 steps per pixel).
    fraction = map2.astype(np.int32)
    raw_x = map1[..., 0] + (fraction & 31) / 32.0
    raw_y = map1[..., 1] + (fraction >> 5) / 32.0
    rect = np.concatenate([pixel_centres(WIDTH, HEIGHT).reshape(-1, 2),
                           np.ones((WIDTH * HEIGHT, 1))], axis=1)
    p_3x3 = np.asarray(p).reshape(3, 4)[:, :3]
    rays = rect @ np.linalg.inv(p_3x3).T @ np.asarray(r).reshape(3, 3)  # R^T P^-1 uv1
    expected = distort(cal, rays).reshape(HEIGHT, WIDTH, 2)
    inside = ((expected[..., 0] > 0) & (expected[..., 0] < WIDTH - 1)
              & (expected[..., 1] > 0) & (expected[..., 1] < HEIGHT - 1))
    assert inside.mean() > 0.9
    error = np.hypot(raw_x - expected[..., 0], raw_y - expected[..., 1])[inside]
    assert error.max() < 0.05  # half a fixed-point step plus the map's own float error


def test_bgr_images_match_image_geometrys_remap():
    # image_geometry calls OpenCV with the full 3x4 P and fixed-point maps.
    cal = calibration("plumb_bob")
    bgr = np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH, 3), np.uint8)
    map1, map2 = cv2.initUndistortRectifyMap(
        k_matrix(cal), np.asarray(cal.d), np.eye(3), np.asarray(cal.p).reshape(3, 4),
        (WIDTH, HEIGHT), cv2.CV_16SC2)
    expected = cv2.remap(bgr, map1, map2, cv2.INTER_LINEAR)
    rectified = Rectifier().rectify(bgr, cal)
    assert rectified.dtype == np.uint8 and rectified.shape == bgr.shape
    np.testing.assert_array_equal(rectified, expected)
    assert np.abs(rectified.astype(np.int16) - bgr).mean() > 20  # it did move pixels


def test_non_contiguous_read_only_views_are_rectified():
    cal = calibration("plumb_bob")
    rgb = np.random.default_rng(1).integers(0, 256, (HEIGHT, WIDTH, 3), np.uint8)
    bgr_view = rgb[..., ::-1]
    bgr_view.flags.writeable = False
    rectifier = Rectifier()
    np.testing.assert_array_equal(rectifier.rectify(bgr_view, cal),
                                  rectifier.rectify(bgr_view.copy(), cal))


def test_float_images_get_a_nan_border():
    # Pincushion: the rectified corners look past the raw image's edge.
    cal = calibration("plumb_bob", d=(0.3, 0.1, 0.0, 0.0, 0.0))
    rectified = Rectifier().rectify(np.full((HEIGHT, WIDTH), 2.0, np.float32), cal)
    assert np.isnan(rectified[0, 0]) and rectified[HEIGHT // 2, WIDTH // 2] == 2.0
    finite = rectified[np.isfinite(rectified)]
    np.testing.assert_allclose(finite, 2.0, rtol=1e-6)


def test_rectified_calibration_is_the_projection_without_distortion():
    r = (0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)
    p = (450.0, 0.0, 330.0, -27.0, 0.0, 455.0, 230.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    cal = calibration("rational_polynomial", r=r, p=p)
    rect = rectified_calibration(cal)
    assert rect.d == (0.0,) * 5 and rect.distortion_model == "plumb_bob"
    assert rect.k == (450.0, 0.0, 330.0, 0.0, 455.0, 230.0, 0.0, 0.0, 1.0)
    assert rect.r == IDENTITY_3X3 and rect.p == p
    assert (rect.width, rect.height) == (WIDTH, HEIGHT)
    assert not needs_rectification(rect)
    intr = rectified_intrinsics(cal)
    assert (intr.fx, intr.fy, intr.cx, intr.cy) == (450.0, 455.0, 330.0, 230.0)
    assert (intr.width, intr.height) == (WIDTH, HEIGHT)


@pytest.mark.parametrize("model", ["plumb_bob", "equidistant"])
def test_absent_r_and_p_mean_identity_and_k(model):
    explicit = rectification_maps(calibration(model))
    for changes in ({"r": (), "p": ()}, {"r": (0.0,) * 9, "p": (0.0,) * 12}):
        cal = calibration(model, **changes)
        for built, expected in zip(rectification_maps(cal), explicit):
            np.testing.assert_array_equal(built, expected)
        assert rectified_calibration(cal).p == P_VGA


def test_zero_distortion_passes_the_image_through():
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    rectifier = Rectifier()
    for d in ((), (0.0,) * 5):
        # Whatever the model says, as image_proc does.
        cal = calibration("plumb_bob", d=d, distortion_model="kannala_brandt")
        assert not needs_rectification(cal)
        assert rectifier.rectify(image, cal) is image
    assert rectifier.builds == 0
    assert needs_rectification(calibration("plumb_bob"))


@pytest.mark.parametrize("name", ["kannala_brandt", ""])
def test_an_unknown_model_is_its_own_error(name):
    cal = calibration("plumb_bob", distortion_model=name)
    with pytest.raises(UnknownDistortionModel) as raised:
        Rectifier().rectify(np.zeros((HEIGHT, WIDTH, 3), np.uint8), cal)
    assert isinstance(raised.value, ValueError) and raised.value.model == name
    message = str(raised.value)
    assert repr(name) in message
    assert all(m in message for m in ("plumb_bob", "rational_polynomial", "equidistant"))


@pytest.mark.parametrize("changes,match", [
    ({"binning_x": 2}, "binning"),
    ({"binning_y": 4}, "binning"),
    ({"roi": (10, 20, 320, 240)}, "ROI"),
    ({"k": (0.0,) * 9}, "uncalibrated"),
    ({"k": K_VGA[:4] + (-500.0,) + K_VGA[5:]}, "focal length fy"),
    ({"k": K_VGA[:8] + (math.nan,)}, "K has non-finite"),
    ({"p": P_VGA[:9]}, "P must have 12"),
    ({"d": (-0.3, 0.1, 0.0)}, "D must have one of"),
    ({"d": (math.inf, 0.0, 0.0, 0.0, 0.0)}, "D has non-finite"),
])
def test_unusable_calibrations_are_refused(changes, match):
    with pytest.raises(ValueError, match=match):
        rectification_maps(calibration("plumb_bob", **changes))


def test_full_image_roi_and_unit_binning_are_the_common_case():
    cal = calibration("plumb_bob", binning_x=1, binning_y=1, roi=(0, 0, WIDTH, HEIGHT))
    assert Rectifier().rectify(np.zeros((HEIGHT, WIDTH, 3), np.uint8), cal).shape == (
        HEIGHT, WIDTH, 3)


def test_equidistant_needs_four_coefficients():
    with pytest.raises(ValueError, match="equidistant D needs 4"):
        rectification_maps(calibration("equidistant", d=(0.02, -0.01)))


def test_an_image_of_another_size_is_refused():
    with pytest.raises(ValueError, match="scale the calibration first"):
        Rectifier().rectify(np.zeros((240, 320, 3), np.uint8), calibration("plumb_bob"))


def test_maps_are_cached_for_the_latest_calibration():
    rectifier = Rectifier()
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    first = calibration("plumb_bob")
    rectifier.rectify(image, first)
    maps = rectifier.maps(first)
    rectifier.rectify(image, calibration("plumb_bob"))  # equal, not the same object
    assert rectifier.builds == 1 and rectifier.maps(first) is maps
    second = calibration("plumb_bob", d=(-0.2, 0.05, 0.0, 0.0, 0.0))
    rectifier.rectify(image, second)
    assert rectifier.builds == 2 and rectifier.maps(second) is not maps
    assert not np.array_equal(rectifier.maps(second)[0], maps[0])
    rectifier.rectify(image, first)  # only the latest is kept
    assert rectifier.builds == 3
