"""One camera's alignment state: references matched by stamp, held fits, counted faults.

The geometry of the fit has its own tests (test_alignment); these check what the node
and the bag tool rely on: which reference a frame gets, what happens without one, and
which rejections and warnings come back, with the per-camera pipeline around it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from depth_anything_ros.geometry.intrinsics import Intrinsics
from depth_anything_ros.geometry.reference import (REFERENCE_ASPECT, REFERENCE_EMPTY,
                                                   REFERENCE_NON_FINITE)
from depth_anything_ros.pipeline.notes import (REJECT_REFERENCE_TOO_OLD, WARN_ALIGNMENT_HELD,
                                               WARN_ALIGNMENT_NONE_YET, WARN_ALIGNMENT_REFUSED)
from depth_anything_ros.pipeline.parameters import NodeParams
from depth_anything_ros.pipeline.scale_alignment import CameraAlignment

HEIGHT, WIDTH = 60, 80
CAMERA = Intrinsics(fx=70.0, fy=70.0, cx=39.5, cy=29.5, width=WIDTH, height=HEIGHT)
SCALE, SHIFT = 0.5, 0.1   # relative output = (1/depth - SHIFT) / SCALE
MS = 1_000_000
P = NodeParams(scale_source="depth", alignment_time_constant=0.0, reference_max_age=0.05)


def _true_depth() -> np.ndarray:
    """Return a floor-and-wall room seen level from 1 m height, 1.5 to 6 m away."""
    rows = (np.arange(HEIGHT) - CAMERA.cy) / CAMERA.fy
    floor = np.where(rows > 0.05, 1.0 / np.maximum(rows, 1e-6), np.inf)
    depth = np.minimum(floor, 6.0)[:, None] * np.ones(WIDTH)
    cols = (np.arange(WIDTH) - CAMERA.cx) / CAMERA.fx
    side = 2.0 / np.maximum(np.abs(cols), 1e-6)
    return np.clip(np.minimum(depth, side[None, :]), 1.5, 6.0).astype(np.float32)


TRUTH = _true_depth()
RELATIVE = ((1.0 / TRUTH - SHIFT) / SCALE).astype(np.float32)


def _sparse(depth: np.ndarray, every: int = 7) -> np.ndarray:
    out = np.full(depth.shape, np.nan, np.float32)
    out[::every, ::every] = depth[::every, ::every]
    return out


def _error(depth: np.ndarray) -> float:
    return float(np.median(np.abs(depth / TRUTH - 1.0)))


def test_a_relative_model_has_no_metres_until_its_first_fit_then_the_reference_scale():
    align = CameraAlignment(metric_model=False, inverse=True)
    depth, notes = align.metres(RELATIVE, 100 * MS, CAMERA, P)
    assert depth is None
    assert [n.key for n in notes] == [WARN_ALIGNMENT_HELD, WARN_ALIGNMENT_NONE_YET]
    assert align.add_depth(_sparse(TRUTH), 200 * MS, P) is None
    depth, notes = align.metres(RELATIVE, 200 * MS, CAMERA, P)
    assert notes == [] and _error(depth) < 1e-3
    assert align.fits == 1 and align.age_s() == 0.0
    fit = align.current
    assert abs(fit.scale / SCALE - 1) < 1e-3 and abs(fit.shift - SHIFT) < 1e-3


def test_relative_scale_is_the_first_guess_before_a_fit():
    align = CameraAlignment(metric_model=False, inverse=True)
    guess = dataclasses.replace(P, relative_scale=1.0)
    depth, _ = align.metres(RELATIVE, 100 * MS, CAMERA, guess)
    np.testing.assert_allclose(depth, 1.0 / RELATIVE, rtol=1e-6)


def test_a_metric_model_keeps_its_own_metres_until_a_fit():
    align = CameraAlignment(metric_model=True, inverse=False)
    own = TRUTH * 1.3
    depth, _ = align.metres(own, 100 * MS, CAMERA, P)
    assert depth is own
    align.add_depth(_sparse(TRUTH), 100 * MS, P)
    depth, _ = align.metres(own, 100 * MS, CAMERA, P)
    assert _error(depth) < 1e-3 and abs(align.current.scale - 1 / 1.3) < 1e-3


def test_a_frame_takes_the_nearest_reference_within_the_age_limit_else_holds_the_fit():
    align = CameraAlignment(metric_model=False, inverse=True)
    align.add_depth(_sparse(TRUTH), 100 * MS, P)
    align.add_depth(_sparse(TRUTH * 2.0), 140 * MS, P)
    depth, _ = align.metres(RELATIVE, 105 * MS, CAMERA, P)   # 100 is nearer than 140
    assert _error(depth) < 1e-3
    depth, _ = align.metres(RELATIVE, 135 * MS, CAMERA, P)   # now 140 is
    assert _error(depth / 2.0) < 1e-3
    depth, notes = align.metres(RELATIVE, 300 * MS, CAMERA, P)  # both over 50 ms away
    assert [n.key for n in notes] == [WARN_ALIGNMENT_HELD]
    assert "keeping the last good fit, 0.17 s old" in notes[0].text
    assert _error(depth / 2.0) < 1e-3 and align.fits == 2
    assert align.status(P)["alignment fit age (s)"] == "0.17"


def test_references_older_than_the_newest_frame_by_the_age_limit_are_rejected():
    align = CameraAlignment(metric_model=False, inverse=True)
    align.metres(RELATIVE, 500 * MS, CAMERA, P)
    note = align.add_depth(_sparse(TRUTH), 440 * MS, P)
    assert note.key == REJECT_REFERENCE_TOO_OLD and note.is_rejection
    assert "0.060 s before the newest frame" in note.text
    assert align.add_depth(_sparse(TRUTH), 460 * MS, P) is None


@pytest.mark.parametrize("reference, kind", [
    (np.ones((HEIGHT, HEIGHT), np.float32), REFERENCE_ASPECT),
    (np.zeros((HEIGHT // 2, WIDTH // 2), np.float32), REFERENCE_EMPTY),
    (np.full((HEIGHT, WIDTH), np.nan, np.float32), REFERENCE_EMPTY),
])
def test_unusable_references_are_rejected_on_arrival_once_the_camera_is_known(reference, kind):
    align = CameraAlignment(metric_model=False, inverse=True)
    align.metres(RELATIVE, 100 * MS, CAMERA, P)
    note = align.add_depth(reference, 100 * MS, P)
    assert note is not None and note.key == kind and note.is_rejection


def test_an_unusable_reference_before_the_first_frame_is_rejected_when_matched():
    align = CameraAlignment(metric_model=False, inverse=True)
    assert align.add_depth(np.ones((HEIGHT, HEIGHT), np.float32), 100 * MS, P) is None
    depth, notes = align.metres(RELATIVE, 100 * MS, CAMERA, P)
    assert depth is None and notes[0].key == REFERENCE_ASPECT


def test_a_refused_fit_keeps_the_last_good_one_and_is_counted():
    align = CameraAlignment(metric_model=False, inverse=True)
    align.add_depth(_sparse(TRUTH), 100 * MS, P)
    align.metres(RELATIVE, 100 * MS, CAMERA, P)
    # Anti-correlated: nearer where the network says farther, a negative scale.
    align.add_depth(_sparse(np.where(TRUTH > 0, 7.5 - TRUTH, np.nan)), 200 * MS, P)
    depth, notes = align.metres(RELATIVE, 200 * MS, CAMERA, P)
    assert [n.key for n in notes] == [WARN_ALIGNMENT_REFUSED]
    assert "keeping the last good fit" in notes[0].text and not notes[0].is_rejection
    assert _error(depth) < 1e-3
    assert align.fits == 1 and sum(align.refused.values()) == 1
    status = align.status(P)
    assert status["alignment fits"] == "1" and status["alignment refused"].endswith(" 1")


def test_points_go_through_the_extrinsic_parameter_or_the_given_pose():
    vs, us = np.mgrid[0:HEIGHT:5, 0:WIDTH:5]
    z = TRUTH[vs, us]
    cam = np.stack([(us - CAMERA.cx) / CAMERA.fx * z, (vs - CAMERA.cy) / CAMERA.fy * z, z],
                   axis=-1).reshape(-1, 3)
    # A sensor 0.2 m to the camera's left (x = -0.2 in the optical frame), same axes.
    sensor = (cam - np.array([-0.2, 0.0, 0.0])).astype(np.float32)
    pose_param = dataclasses.replace(P, scale_source="points",
                                     reference_extrinsic=(-0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    for params, pose in ((pose_param, None),
                         (dataclasses.replace(pose_param, reference_extrinsic=(
                             0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)),
                          (np.eye(3), np.array([-0.2, 0.0, 0.0])))):
        align = CameraAlignment(metric_model=False, inverse=True)
        align.add_points(sensor, 100 * MS, params, pose)
        depth, notes = align.metres(RELATIVE, 100 * MS, CAMERA, params)
        assert notes == [] and _error(depth) < 2e-3


def test_a_cloud_without_finite_points_is_rejected():
    align = CameraAlignment(metric_model=False, inverse=True)
    params = dataclasses.replace(P, scale_source="points")
    align.metres(RELATIVE, 100 * MS, CAMERA, params)
    note = align.add_points(np.full((50, 3), np.nan, np.float32), 100 * MS, params)
    assert note.key == REFERENCE_NON_FINITE and note.is_rejection


def test_ground_needs_no_messages():
    rows = np.arange(HEIGHT)[:, None] - CAMERA.cy
    with np.errstate(divide="ignore"):
        floor = np.where(rows > 0, 0.5 * CAMERA.fy / np.maximum(rows, 1e-9), 50.0)
    floor = np.broadcast_to(np.minimum(floor, 50.0), (HEIGHT, WIDTH)).astype(np.float32)
    relative = ((1.0 / floor - SHIFT) / SCALE).astype(np.float32)
    params = dataclasses.replace(P, scale_source="ground", camera_height=0.5)
    align = CameraAlignment(metric_model=False, inverse=True)
    depth, notes = align.metres(relative, 100 * MS, CAMERA, params)
    assert notes == []
    below = np.arange(HEIGHT) > CAMERA.cy + 3
    np.testing.assert_allclose(depth[below], floor[below], rtol=5e-3)
