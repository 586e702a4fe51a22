"""A one-item mailbox between the subscription callback and the inference thread.

Inference takes longer than a camera frame period on most CPUs. A queue would then
grow latency without bound (every output describes an ever older scene), so the
callback overwrites whatever the worker has not picked up yet: the worker always gets
the newest frame, and each overwrite is counted as a dropped frame for diagnostics.
"""

from __future__ import annotations

import threading
from typing import Generic, Optional, TypeVar

T = TypeVar("T")


class FrameSlot(Generic[T]):
    """Holds at most one pending item; ``put`` never blocks, ``take`` waits for one."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Optional[T] = None
        self._pending = False
        self._closed = False
        self._dropped = 0

    def put(self, item: T) -> bool:
        """Offer ``item``; returns True when it replaced a pending item (a dropped frame).

        After ``close`` the item is discarded (and not counted: nothing will ever
        consume it, so it is shutdown, not overload).
        """
        with self._cond:
            if self._closed:
                return False
            replaced = self._pending
            if replaced:
                self._dropped += 1
            self._item = item
            self._pending = True
            self._cond.notify_all()
            return replaced

    def put_when_free(self, item: T) -> bool:
        """Wait until the consumer has taken the pending item, then offer ``item``.

        For a hand-over between two pipeline stages, where overwriting would throw away
        finished work; the wait is at most one item long. False when closed meanwhile.
        """
        with self._cond:
            self._cond.wait_for(lambda: not self._pending or self._closed)
            if self._closed:
                return False
            self._item = item
            self._pending = True
            self._cond.notify_all()
            return True

    def take(self, timeout: Optional[float] = None) -> Optional[T]:
        """Wait for the newest item and remove it from the slot.

        Returns None when the slot is closed or ``timeout`` seconds pass first; the
        caller tells the two apart with ``closed``.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: self._pending or self._closed, timeout):
                return None
            if self._closed:
                return None
            item, self._item, self._pending = self._item, None, False
            self._cond.notify_all()  # a producer may wait in put_when_free
            return item

    def close(self) -> None:
        """Wake every waiting ``take`` so the worker thread can exit."""
        with self._cond:
            self._closed = True
            self._item = None
            self._pending = False
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed

    @property
    def dropped(self) -> int:
        """Items overwritten before the worker took them, since construction."""
        with self._cond:
            return self._dropped

    @property
    def pending(self) -> bool:
        with self._cond:
            return self._pending
