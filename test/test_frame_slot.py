"""FrameSlot: the newest frame wins, overwrites are counted, a closed slot frees its worker."""

import threading
import time

from depth_anything_ros.pipeline.frame_slot import FrameSlot

# Generous bound for "the other thread reacted": far above scheduling jitter on a
# loaded 2-core machine, far below the test timeout.
REACT_S = 2.0


def test_take_returns_the_newest_item_and_counts_overwrites():
    slot: FrameSlot[int] = FrameSlot()
    assert slot.put(1) is False
    assert slot.put(2) is True
    assert slot.put(3) is True
    assert slot.dropped == 2
    assert slot.pending
    assert slot.take(timeout=0) == 3
    assert not slot.pending
    # Taken items are not dropped ones.
    assert slot.put(4) is False
    assert slot.take(timeout=0) == 4
    assert slot.dropped == 2


def test_take_times_out_on_an_empty_slot():
    slot: FrameSlot[int] = FrameSlot()
    start = time.monotonic()
    assert slot.take(timeout=0.05) is None
    assert time.monotonic() - start >= 0.05
    assert not slot.closed


def test_put_wakes_a_waiting_worker():
    slot: FrameSlot[str] = FrameSlot()
    got: list[str] = []
    worker = threading.Thread(target=lambda: got.append(slot.take(timeout=REACT_S * 5)))
    worker.start()
    time.sleep(0.05)  # let the worker block inside take()
    assert not got
    sent = time.monotonic()
    slot.put("frame")
    worker.join(REACT_S)
    assert not worker.is_alive()
    assert got == ["frame"]
    assert time.monotonic() - sent < REACT_S


def test_close_unblocks_a_waiting_worker_and_discards_later_puts():
    slot: FrameSlot[int] = FrameSlot()
    results: list[object] = []
    worker = threading.Thread(target=lambda: results.append(slot.take()))  # no timeout
    worker.start()
    time.sleep(0.05)
    slot.close()
    worker.join(REACT_S)
    assert not worker.is_alive()
    assert results == [None]
    assert slot.closed
    assert slot.put(7) is False
    assert slot.take(timeout=0) is None
    assert slot.dropped == 0


def test_close_discards_a_pending_item():
    slot: FrameSlot[int] = FrameSlot()
    slot.put(1)
    slot.close()
    assert slot.take(timeout=0) is None
    assert not slot.pending


def test_a_slow_consumer_sees_increasing_items_and_every_item_is_taken_or_dropped():
    slot: FrameSlot[int] = FrameSlot()
    taken: list[int] = []

    def consume() -> None:
        while True:
            item = slot.take()
            if item is None:
                return
            taken.append(item)
            time.sleep(0.002)  # slower than the producer, so overwrites happen

    worker = threading.Thread(target=consume)
    worker.start()
    count = 2000
    for i in range(count):
        slot.put(i)
    # Let the consumer drain the last item before closing.
    deadline = time.monotonic() + REACT_S
    while slot.pending and time.monotonic() < deadline:
        time.sleep(0.001)
    slot.close()
    worker.join(REACT_S)
    assert not worker.is_alive()
    assert taken == sorted(taken) and len(set(taken)) == len(taken)
    assert taken[-1] == count - 1
    assert len(taken) + slot.dropped == count
    assert slot.dropped > 0


def test_put_when_free_waits_for_the_consumer_and_loses_nothing():
    slot: FrameSlot[int] = FrameSlot()
    assert slot.put_when_free(1) is True
    producer_done = threading.Event()

    def produce() -> None:
        slot.put_when_free(2)  # must wait: 1 is still pending
        producer_done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    assert not producer_done.wait(0.1)
    assert slot.take(timeout=0) == 1
    assert producer_done.wait(REACT_S)
    assert slot.take(timeout=0) == 2
    assert slot.dropped == 0


def test_close_releases_a_producer_waiting_in_put_when_free():
    slot: FrameSlot[int] = FrameSlot()
    slot.put_when_free(1)
    results: list[bool] = []
    producer = threading.Thread(target=lambda: results.append(slot.put_when_free(2)))
    producer.start()
    time.sleep(0.05)
    slot.close()
    producer.join(REACT_S)
    assert not producer.is_alive()
    assert results == [False]
