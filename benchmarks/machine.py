"""What the benchmark ran on, and an estimated compute peak for the achieved GFLOP/s.

The peak comes from ``lscpu``: physical cores x clock x FLOPs per cycle, where FLOPs per
cycle assumes two FMA pipes per core at the widest vector width the flags advertise (an
FMA being 2 FLOPs). The clock is lscpu's max MHz; virtual machines often report none, and
then the nominal clock from /proc/cpuinfo is used, which boost clocks exceed: a model can
then beat the "peak", which says the clock assumption is low. The measured FC ceiling
(``fc_ceiling``) is the practical counterpart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
import os
import platform
import subprocess

FMA_PIPES = 2
# AMD family 0x19 (Zen 3/Zen 4) executes 512-bit instructions as two 256-bit halves, so
# AVX-512 there has the 256-bit rate; Zen 5 (0x1A) and Intel cores have 512-bit datapaths.
HALF_RATE_AVX512_AMD_FAMILIES = {25}
# Intel AMX tile unit, per core per cycle (Intel's Sapphire Rapids figures).
AMX_BF16_FLOPS_PER_CYCLE = 1024
AMX_INT8_OPS_PER_CYCLE = 2048


@dataclass(frozen=True)
class Machine:
    cpu_model: str
    vendor: str
    family: int
    physical_cores: int
    logical_cpus: int
    ghz: float
    ghz_source: str
    isa: str                     # the widest FP32 FMA path: avx512 | avx2+fma | sse
    flops_per_cycle_f32: int
    peak_gflops: dict[str, float]  # f32 / bf16 / int8 (ops) for the whole machine
    assumption: str

    def to_json(self) -> dict:
        return asdict(self)

    def peak_for(self, precision: str) -> float:
        """Peak for an OpenVINO execution precision name (f32, bf16, f16, i8/u8 ...)."""
        precision = precision.lower()
        if "bf16" in precision or "bfloat16" in precision:
            return self.peak_gflops["bf16"]
        if "int8" in precision or precision in ("i8", "u8"):
            return self.peak_gflops["int8"]
        return self.peak_gflops["f32"]


def _lscpu() -> dict[str, str]:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10,
                              check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def _cpuinfo_mhz() -> float:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("cpu MHz"):
                    return float(line.split(":")[1])
    except OSError:
        pass
    return 0.0


def describe_machine() -> Machine:
    info = _lscpu()
    flags = set(info.get("Flags", "").split())
    logical = len(os.sched_getaffinity(0))
    threads_per_core = int(info.get("Thread(s) per core", "1") or 1)
    physical = max(1, logical // max(1, threads_per_core))
    family = int(info.get("CPU family", "0") or 0)
    vendor = info.get("Vendor ID", platform.processor() or "unknown")

    if info.get("CPU max MHz"):
        ghz, ghz_source = float(info["CPU max MHz"]) / 1000.0, "lscpu CPU max MHz"
    else:
        ghz, ghz_source = _cpuinfo_mhz() / 1000.0, "/proc/cpuinfo cpu MHz (no max MHz reported)"

    if "avx512f" in flags:
        isa, lanes = "avx512", 16
        if vendor == "AuthenticAMD" and family in HALF_RATE_AVX512_AMD_FAMILIES:
            lanes = 8
    elif "avx2" in flags and "fma" in flags:
        isa, lanes = "avx2+fma", 8
    else:
        isa, lanes = "sse", 4
    f32_per_cycle = FMA_PIPES * lanes * 2
    if "amx_bf16" in flags:
        bf16_per_cycle = AMX_BF16_FLOPS_PER_CYCLE
    elif "avx512_bf16" in flags:
        bf16_per_cycle = 2 * f32_per_cycle   # VDPBF16PS: two bf16 products per f32 lane
    else:
        bf16_per_cycle = f32_per_cycle       # executed as f32
    if "amx_int8" in flags:
        int8_per_cycle = AMX_INT8_OPS_PER_CYCLE
    elif "avx512_vnni" in flags or "avx_vnni" in flags:
        int8_per_cycle = 4 * f32_per_cycle   # VPDPBUSD: four u8*s8 products per i32 lane
    else:
        int8_per_cycle = f32_per_cycle
    scale = physical * ghz
    peak = {"f32": scale * f32_per_cycle, "bf16": scale * bf16_per_cycle,
            "int8": scale * int8_per_cycle}
    assumption = (f"{physical} cores x {ghz:.2f} GHz ({ghz_source}) x {f32_per_cycle} FP32 "
                  f"FLOP/cycle ({isa}: {FMA_PIPES} FMA pipes x {lanes} lanes x 2); bf16 "
                  f"{bf16_per_cycle}, int8 {int8_per_cycle} ops/cycle from the "
                  "amx/avx512_bf16/vnni flags; no turbo or AVX-512 clock drop modelled")
    return Machine(info.get("Model name", platform.processor() or "unknown"), vendor, family,
                   physical, logical, round(ghz, 3), ghz_source, isa, f32_per_cycle,
                   {k: round(v, 1) for k, v in peak.items()}, assumption)


def cpu_stall_seconds() -> float | None:
    """Total time some runnable task waited for a CPU (Linux PSI, /proc/pressure/cpu).

    Its growth over a section, divided by the section's length, says how contended the
    CPU was: near 0 when the benchmark has the machine to itself, tens of percent when
    another job competes, which makes that section's absolute numbers unreliable.
    """
    try:
        with open("/proc/pressure/cpu") as handle:
            for line in handle:
                if line.startswith("some"):
                    fields = dict(item.split("=") for item in line.split()[1:])
                    return int(fields["total"]) / 1e6
    except (OSError, KeyError, ValueError):
        return None
    return None
