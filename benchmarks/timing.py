"""Latency statistics over repeated calls, the one way every section times things."""

from __future__ import annotations

from dataclasses import asdict, dataclass
import time
from typing import Callable, Sequence

import numpy as np

# Idle time before each call when alternatives are interleaved: long enough for the
# previous one's spinning thread pools to go to sleep (50 ms sufficed on 2 cores).
SPIN_PAUSE_S = 0.1


@dataclass(frozen=True)
class Latency:
    """Milliseconds.

    Median and p90 rather than mean: on a shared CPU a single slow run (another process, a
    page fault) would move the mean but says nothing about us.
    """

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


def measure_interleaved(fns: Sequence[Callable[[], object]], runs: int, warmup: int,
                        pause_s: float) -> list[Latency]:
    """Time several alternatives in rounds of one call each.

    Background load on a shared machine then hits all of them alike and their ratios stay
    meaningful.

    The order rotates every round, and every call starts after ``pause_s`` idle: thread
    pools that spin after a call (ONNX Runtime's, OpenMP's) would otherwise slow the next
    alternative. Measured on 2 cores: PyTorch right after ONNX Runtime took 71 ms instead
    of 36 ms without a pause, 50 ms with 20 ms, 36 ms with 50 ms.
    """
    for fn in fns:
        for _ in range(warmup):
            fn()
        time.sleep(pause_s)
    samples: list[list[float]] = [[] for _ in fns]
    for round_index in range(max(1, runs)):
        for offset in range(len(fns)):
            index = (round_index + offset) % len(fns)
            time.sleep(pause_s)
            started = time.perf_counter()
            fns[index]()
            samples[index].append(time.perf_counter() - started)
    return [Latency.from_seconds(seconds) for seconds in samples]
