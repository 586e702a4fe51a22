"""The benchmark CLI end to end on a tiny network: it runs, and its JSON holds real numbers."""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys

REPO = Path(__file__).resolve().parents[1]


def test_quick_model_benchmark_writes_positive_timings(tmp_path: Path, synthetic_checkpoint):
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--sections", "model",
         "--image-size", "112x140", "--side", "112", "--checkpoint", str(synthetic_checkpoint),
         "--cache", str(tmp_path / "cache"), "--out", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]

    results = json.loads((out / "results.json").read_text())
    section = results["model"]["112x140"]
    assert section["network_size"] == [112, 140]
    assert section["flops"]["gflops"] > 0
    rows = {row["key"]: row for row in section["rows"]}
    expected = {"pytorch", "onnxruntime", "ov_naive", "ours_fp32", "ours_fp16", "ours_int8",
                "ours_fp16_throughput", "ours_int8_throughput"}
    assert expected <= set(rows), sorted(rows)
    for key, row in rows.items():
        if key.endswith("_throughput"):
            assert row["fps"] > 0 and row["streams"] >= 1, row
        else:
            assert 0 < row["latency"]["median_ms"] <= row["latency"]["p90_ms"], row
            assert row["latency"]["runs"] == 3
        assert row["gflops_per_s"] > 0
    # FP16 storage computed at the same precision as FP32 barely changes the result;
    # the reference row is the FP32 IR computed in f32, held against itself.
    assert rows["ours_fp16"]["median_rel_error"] < 0.02
    reference = rows.get("ours_fp32_f32", rows["ours_fp32"])
    assert reference["execution"] == "f32" and reference["median_rel_error"] < 1e-6
    assert "### Model only" in (out / "results.md").read_text()
    assert (out / "results.png").stat().st_size > 10_000


def test_int8_sweep_prints_a_row_per_variant(tmp_path: Path, synthetic_checkpoint):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.int8_sweep", "--image-size", "112x140",
         "--side", "112", "--checkpoint", str(synthetic_checkpoint), "--only", "0", "5",
         "--runs", "2", "--held-out", "1", "--cache", str(tmp_path / "cache")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = [line.split("|")[1:-1] for line in run.stdout.splitlines()
            if line.startswith("| ") and "ms" not in line]
    names = [row[0].strip() for row in rows]
    assert names == ["our FP16 IR (device default precision)",
                     "NNCF defaults (transformer, mixed, SmoothQuant 0.95)",
                     "DPT head in float"], run.stdout
    for row in rows[1:]:
        median_ms, speedup, error = (float(row[i].strip(" %")) for i in (1, 2, 3))
        assert median_ms > 0 and speedup > 0 and 0 <= error < 20
