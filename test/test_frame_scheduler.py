"""FrameScheduler: each camera's newest frame wins, the longest-waiting camera is served first."""

import threading

import pytest

from depth_anything_ros.pipeline.frame_scheduler import FrameScheduler


def test_a_newer_frame_replaces_the_pending_one_and_says_so():
    frames: FrameScheduler[int] = FrameScheduler(["front"])
    assert frames.put("front", 1) is False
    assert frames.put("front", 2) is True     # 1 was never taken: dropped
    assert frames.take() == ("front", 2)
    assert frames.put("front", 3) is False    # 2 was taken, not dropped
    assert frames.take() == ("front", 3)


def test_the_camera_served_longest_ago_goes_first_whatever_its_rate():
    frames: FrameScheduler[str] = FrameScheduler(["a", "b", "c"])
    for camera in "abc":
        frames.put(camera, camera + "1")
    assert frames.take() == ("a", "a1")       # never served: the cameras' own order
    frames.put("a", "a2")                     # a fast camera offers again at once...
    assert frames.take() == ("b", "b1")       # ...and still waits its turn
    assert frames.take() == ("c", "c1")
    frames.put("b", "b2")
    assert frames.take() == ("a", "a2")
    assert frames.take() == ("b", "b2")


def test_a_silent_camera_holds_no_lane():
    frames: FrameScheduler[str] = FrameScheduler(["silent", "busy"])
    frames.put("busy", "x")
    assert frames.take() == ("busy", "x")


def test_an_unknown_camera_is_refused():
    frames: FrameScheduler[str] = FrameScheduler(["front"])
    with pytest.raises(KeyError):
        frames.put("rear", "x")


def test_close_wakes_a_waiting_lane_and_discards_pending_and_later_frames():
    frames: FrameScheduler[str] = FrameScheduler(["front"])
    taken: list[object] = []
    lane = threading.Thread(target=lambda: taken.append(frames.take()))
    lane.start()
    frames.close()
    lane.join(30)
    assert not lane.is_alive() and taken == [None]
    assert frames.put("front", "late") is False   # discarded, not counted as dropped
    assert frames.take() is None
