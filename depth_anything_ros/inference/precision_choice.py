"""Which of several precisions of one model to load on this CPU.

A models folder may hold the same model exported more than once, differing only in the
``_fp32`` / ``_fp16`` / ``_int8`` ending the build hook gives file names. Which is faster
depends on the CPU, measured (benchmarks/README.md): with AVX-512 VNNI but no AMX (the
2-core AMD EPYC here) INT8 ran 1.3-1.4x faster than the FP16 IR computed in bf16; on a
Xeon with AMX, INT8 ran at 0.97x the speed of bf16 on the AMX tiles, with a larger error
(issue 5's measurement), so there the FP16 IR wins. Other devices (GPU, NPU) get FP16, their
native precision.
"""

from __future__ import annotations

from pathlib import Path
import re
from typing import Iterable, NamedTuple, Optional

PRECISION_ENDING = re.compile(r"^(?P<stem>.+)_(?P<precision>fp32|fp16|int8)$")
CPUINFO = Path("/proc/cpuinfo")


class Choice(NamedTuple):
    path: Path
    reason: str


def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str]:
    """Return the first processor's flags; empty where /proc/cpuinfo does not exist."""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as stream:
            for line in stream:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def preference(device: str, flags: frozenset[str]) -> tuple[tuple[str, ...], str]:
    """Precisions best first, and why, for ``device`` on a CPU with ``flags``."""
    if not device.upper().startswith("CPU"):
        return ("fp16", "int8", "fp32"), f"{device} computes natively in fp16"
    if "amx_bf16" in flags:
        return ("fp16", "int8", "fp32"), "this CPU has AMX: bf16 there is as fast as int8"
    return ("int8", "fp16", "fp32"), "this CPU has no AMX: int8 is the fastest here"


def choose(models: Iterable[Path], device: str,
           flags: Optional[frozenset[str]] = None) -> Optional[Choice]:
    """Return the IR to load when ``models`` are precisions of one model.

    Return None when they are different models (then the user has to say which one).
    """
    by_precision: dict[str, Path] = {}
    stems = set()
    for path in models:
        match = PRECISION_ENDING.match(path.stem)
        if match is None:
            return None
        stems.add(match["stem"])
        by_precision[match["precision"]] = path
    if len(stems) != 1:
        return None
    order, why = preference(device, cpu_flags() if flags is None else flags)
    best = next(p for p in order if p in by_precision)
    others = ", ".join(by_precision[p].name for p in order if p in by_precision and p != best)
    return Choice(by_precision[best], f"{best} of {by_precision[best].parent} ({why}; "
                                      f"also there: {others})")
