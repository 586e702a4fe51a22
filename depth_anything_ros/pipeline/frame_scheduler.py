"""The newest frame of each camera, handed to whichever inference lane is free next.

Inference takes longer than a camera frame period on most CPUs; a queue would then grow
latency without bound (every output describing an ever older scene). So each camera
keeps only its newest frame, an overwritten one counting as dropped. One node serves
several cameras from one model, so a free lane must also choose whose frame to run: the
camera that has gone longest without being served. Busy cameras are then served in turn,
whatever their frame rates, and a camera that sends nothing (or only messages refused
before they get here) never holds a lane or delays another.
"""

from __future__ import annotations

import itertools
import threading
from typing import Generic, Hashable, Iterable, Optional, TypeVar

T = TypeVar("T")


class FrameScheduler(Generic[T]):
    """A newest-frame slot per camera; ``take`` serves the longest-waiting camera."""

    def __init__(self, cameras: Iterable[Hashable]) -> None:
        self._cond = threading.Condition()
        self._pending: dict[Hashable, T] = {}
        # When each camera was last served, as a tick of one counter: no clock, so ties
        # cannot happen and tests need not sleep. Initial order: the cameras' own.
        self._ticks = itertools.count()
        self._served = {camera: next(self._ticks) for camera in cameras}
        self._closed = False

    def put(self, camera: Hashable, item: T) -> bool:
        """Offer ``camera``'s newest frame; True when it replaced one not yet taken (dropped).

        After ``close`` the item is discarded and not counted.
        """
        with self._cond:
            if self._closed:
                return False
            if camera not in self._served:
                raise KeyError(f"unknown camera {camera!r}")
            replaced = camera in self._pending
            self._pending[camera] = item
            self._cond.notify()
            return replaced

    def take(self) -> Optional[tuple[Hashable, T]]:
        """Wait for any camera's frame; return (camera, frame) of the longest-waiting camera.

        Returns None once closed.
        """
        with self._cond:
            self._cond.wait_for(lambda: self._pending or self._closed)
            if self._closed:
                return None
            camera = min(self._pending, key=self._served.__getitem__)
            self._served[camera] = next(self._ticks)
            return camera, self._pending.pop(camera)

    def close(self) -> None:
        """Drop what is pending and wake every waiting ``take`` so workers can exit."""
        with self._cond:
            self._closed = True
            self._pending.clear()
            self._cond.notify_all()
