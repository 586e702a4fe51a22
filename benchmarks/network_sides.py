"""Model-only speed by network short side: what fewer tokens buy.

The network size follows the upstream rule from the camera size and the short side
(``--side``), so 480x640 at side 448 runs at 448x602. The ViT's work grows with the
tokens, (H/14)(W/14) + 1, and its attention with their square, so a smaller side is the
one lever that cuts every part of the frame. Each side gets its own FP16 IR through the
same ModelBuilder as the model section (synthetic weights with the real architecture:
real timings, meaningless depth). Rows are timed as our rows there: ``DepthEngine.infer``
from the u8 camera image at the device's default precision with the LATENCY hint, the
sides in interleaved rounds; then the THROUGHPUT hint fed by an AsyncInferQueue.
"""

from __future__ import annotations

import argparse
from typing import Callable, TYPE_CHECKING

from depth_anything_ros.inference.sizing import network_size, PATCH

if TYPE_CHECKING:
    from benchmarks.artifacts import ModelBuilder
    from benchmarks.model_latency import Settings

SIDES = (518, 448, 392, 336, 280)


def parse_sides(text: str) -> list[int]:
    """Parse ``518,448,...``: positive multiples of the ViT's 14-pixel patch."""
    try:
        sides = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sides such as 518,448; got {text!r}") \
            from None
    wrong = [side for side in sides if side <= 0 or side % PATCH]
    if wrong or not sides:
        raise argparse.ArgumentTypeError(f"sides must be positive multiples of {PATCH}; got "
                                         f"{text!r}")
    return sides


def tokens(size: tuple[int, int]) -> int:
    """Return the ViT's tokens for a network size: one per 14x14 patch, plus the class token."""
    return (size[0] // PATCH) * (size[1] // PATCH) + 1


def side_sizes(camera_size: tuple[int, int], sides: list[int]) -> list[tuple[int, int]]:
    """Return the network size each side gives this camera (upstream rule)."""
    return [network_size(*camera_size, side=side) for side in sides]


def run_sides(builder: ModelBuilder, settings: Settings, camera_size: tuple[int, int],
              sides: list[int], log: Callable[[str], None] = print) -> dict:
    """Time our FP16 IR at each side, with the model section's builder and settings."""
    # Imported here so that the CLI can import parse_sides without the export extras.
    from benchmarks.artifacts import scenes
    from benchmarks.model_latency import throughput_queue, time_queued
    from benchmarks.timing import measure_interleaved, SPIN_PAUSE_S
    from depth_anything_ros.inference.engine import DepthEngine, EngineConfig

    camera = scenes(1, *camera_size)[0]
    sizes = side_sizes(camera_size, sides)
    models = [builder.models(size, ("fp16",)) for size in sizes]
    engines = [DepthEngine(EngineConfig(str(m.ours["fp16"]), cache_dir="none")) for m in models]
    # Compiled before the rounds, so that no timed call pays for it.
    executions = [engine.compiled(*camera_size).get_property("INFERENCE_PRECISION_HINT")
                  .get_type_name() for engine in engines]
    calls = [lambda engine=engine: engine.infer(camera) for engine in engines]
    log(f"  {len(sides)} sides, {settings.warmup} warm-up calls each, then {settings.runs} "
        "interleaved rounds")
    latencies = measure_interleaved(calls, settings.runs, settings.warmup, SPIN_PAUSE_S)
    queued = [throughput_queue(m, "fp16", camera) for m in models]
    time_queued(queued, settings.throughput_frames, log)
    rows = []
    measured = zip(sides, sizes, executions, latencies, queued)
    for side, size, execution, latency, queue in measured:
        log(f"  side {side} ({size[0]}x{size[1]}): median {latency.median_ms:.1f} ms, "
            f"{queue.row.fps:.2f} frames/s with THROUGHPUT")
        rows.append({"side": side, "network_size": list(size), "tokens": tokens(size),
                     "execution": execution, "latency": latency.to_json(),
                     "latency_fps": round(1e3 / latency.median_ms, 2),
                     "throughput_fps": round(queue.row.fps, 2),
                     "streams": queue.row.streams, "requests": queue.row.requests})
    return {"camera_size": list(camera_size), "rows": rows}
