"""Latency statistics over repeated calls, the one way every section times things."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np


@dataclass(frozen=True)
class Latency:
    """Milliseconds. Median and p90 rather than mean: on a shared CPU a single slow run
    (another process, a page fault) would move the mean but says nothing about us."""

    median_ms: float
    p90_ms: float
    min_ms: float
    runs: int

    @classmethod
    def from_seconds(cls, samples: Sequence[float]) -> "Latency":
        if not samples:
            raise ValueError("no samples")
        ms = np.asarray(samples, np.float64) * 1e3
        return cls(float(np.median(ms)), float(np.percentile(ms, 90)), float(ms.min()),
                   len(ms))

    def to_json(self) -> dict[str, float]:
        return asdict(self)


def measure(fn: Callable[[], object], runs: int, warmup: int,
            budget_s: float | None = None) -> Latency:
    """Time ``runs`` calls of ``fn`` after ``warmup`` untimed ones.

    ``budget_s`` caps pathological paths (e.g. a message setter that walks 10 MB byte by
    byte): once the timed calls have used it up, at least three samples are kept and the
    rest skipped, so one slow alternative cannot eat the whole benchmark's time.
    """
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    spent = 0.0
    for _ in range(max(1, runs)):
        started = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - started
        samples.append(elapsed)
        spent += elapsed
        if budget_s is not None and spent > budget_s and len(samples) >= 3:
            break
    return Latency.from_seconds(samples)
