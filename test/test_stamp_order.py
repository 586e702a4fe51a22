"""StampOrder: skip stale frames, take a big or persistent jump back as a restart."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
import pytest

from depth_anything_ros.pipeline.stamp_order import (RESTART_AFTER_FRAMES, RESTART_AFTER_S,
                                                     StampOrder, StampVerdict)

ACCEPT, BACKWARDS, RESTART = StampVerdict.ACCEPT, StampVerdict.BACKWARDS, StampVerdict.RESTART


def at(seconds: float) -> int:
    return round(seconds * 1e9)


def verdicts(order: StampOrder, *seconds: float) -> list[StampVerdict]:
    return [order.check(at(s))[0] for s in seconds]


def test_forward_and_equal_stamps_are_accepted():
    assert verdicts(StampOrder(), 10.0, 10.0, 10.033, 50.0) == [ACCEPT] * 4


def test_a_stale_frame_is_skipped_and_does_not_move_the_reference():
    order = StampOrder()
    assert verdicts(order, 10.0, 10.1) == [ACCEPT, ACCEPT]
    verdict, back = order.check(at(10.05))
    assert verdict is BACKWARDS and back == pytest.approx(0.05)
    # 10.08 is after the skipped 10.05 but still before 10.1.
    assert verdicts(order, 10.08, 10.1, 10.2) == [BACKWARDS, ACCEPT, ACCEPT]


def test_a_jump_back_over_the_limit_is_a_restart():
    order = StampOrder()
    assert verdicts(order, 100.0, 100.0 - RESTART_AFTER_S + 0.01) == [ACCEPT, BACKWARDS]
    verdict, back = order.check(at(100.0 - RESTART_AFTER_S - 0.01))
    assert verdict is RESTART and back == pytest.approx(RESTART_AFTER_S + 0.01)
    # The restarted stream is the reference now.
    assert verdicts(order, 99.5, 99.2) == [ACCEPT, BACKWARDS]


def test_older_frames_in_a_row_end_as_a_restart():
    # A looped recording shorter than RESTART_AFTER_S would otherwise stall for good.
    order = StampOrder()
    order.check(at(5.0))
    loop = [4.5 + 0.01 * i for i in range(RESTART_AFTER_FRAMES)]
    assert verdicts(order, *loop) == [BACKWARDS] * (RESTART_AFTER_FRAMES - 1) + [RESTART]
    assert verdicts(order, 4.6, 4.7) == [ACCEPT, ACCEPT]


def test_unstamped_images_are_accepted_and_leave_the_reference():
    order = StampOrder()
    assert verdicts(order, 0.0, 10.0, 0.0, 9.9, 0.0) == [ACCEPT, ACCEPT, ACCEPT, BACKWARDS, ACCEPT]


def test_limits_must_be_positive():
    with pytest.raises(ValueError):
        StampOrder(restart_after_s=0.0)
    with pytest.raises(ValueError):
        StampOrder(restart_after_frames=0)


# Steps in ns: mostly forward, some small and some large steps back, some unstamped.
steps = st.lists(st.one_of(st.integers(0, 10**8), st.integers(-10**9, 0),
                           st.integers(-5 * 10**9, 0), st.just(None)), max_size=60)


@settings(max_examples=300, deadline=None)
@given(steps=steps)
def test_verdicts_follow_the_rules_for_any_sequence(steps):
    order = StampOrder()
    now = 10**12
    reference = None
    in_row = 0
    limit_ns = int(RESTART_AFTER_S * 1e9)
    for step in steps:
        if step is None:
            ns = 0
        else:
            now = max(1, now + step)
            ns = now
        verdict, back_s = order.check(ns)
        if ns == 0:
            assert verdict is ACCEPT
            continue
        back = 0 if reference is None else reference - ns
        if back <= 0:
            assert verdict is ACCEPT and back_s == 0.0
        elif back > limit_ns or in_row + 1 >= RESTART_AFTER_FRAMES:
            assert verdict is RESTART and back_s == pytest.approx(back * 1e-9)
        else:
            assert verdict is BACKWARDS and 0.0 < back_s <= RESTART_AFTER_S
        in_row = in_row + 1 if verdict is BACKWARDS else 0
        assert in_row < RESTART_AFTER_FRAMES
        if verdict is not BACKWARDS:
            reference = ns
