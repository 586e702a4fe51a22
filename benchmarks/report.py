"""Turning the results dict into a markdown report, a JSON file and a PNG chart.

Everything here reads only the JSON-able results, so a saved results.json can be
re-rendered (``python -m benchmarks.report results.json``) without measuring again.
"""

from __future__ import annotations

import json
from pathlib import Path
import statistics
import sys

# Targets from the speed issue; the report states each with its measured ratio.
TARGETS = {
    "ours_vs_onnxruntime": 2.5, "ours_vs_pytorch": 3.0, "ours_vs_naive": 1.0,
    "int8_vs_fp16": 1.8, "int8_max_median_error": 0.01,
    "e2e_over_model": 1.10, "rate_over_model": 0.95, "warm_start_s": 3.0,
}


def _fmt(value, digits: int = 1, suffix: str = "") -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}{suffix}"


def _rows_by_key(section: dict) -> dict[str, dict]:
    return {row["key"]: row for row in section["rows"]}


def _ms_per_frame(row: dict) -> float | None:
    if row.get("fps"):
        return 1e3 / row["fps"]
    return row["latency"]["median_ms"] if row.get("latency") else None


def _ratio(slow: dict | None, fast: dict | None) -> float | None:
    if not slow or not fast:
        return None
    a, b = _ms_per_frame(slow), _ms_per_frame(fast)
    return a / b if a and b else None


def _pressure(section: dict) -> str:
    value = section.get("cpu_pressure")
    if value is None:
        return ""
    # The benchmark's own thread pools cause a few percent; well above that means
    # another process was competing.
    verdict = ("little contention" if value < 0.10 else
               "another job likely competed for the CPU: absolute times are inflated, "
               "ratios less so thanks to the interleaving")
    return (f" CPU pressure during this section: {100 * value:.0f} % of the time a runnable "
            f"task waited for a CPU ({verdict}).")


def model_table(size_key: str, section: dict, encoder: str) -> str:
    rows = _rows_by_key(section)
    cam, net = section["camera_size"], section["network_size"]
    encoder = section.get("model", encoder)  # results from before DA3 have no model field
    lines = [f"### Model only: {encoder}, camera {cam[0]}x{cam[1]} -> network "
             f"{net[0]}x{net[1]} ({section['flops']['gflops']:.1f} GFLOPs)", "",
             "| backend | weights | computes in | input | median ms | p90 ms | frames/s | "
             "GFLOP/s | % of est. peak | % of FC ceiling | x PyTorch | x ORT | x naive OV | "
             "median rel. err |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in section["rows"]:
        latency = row.get("latency") or {}
        ms = _ms_per_frame(row)
        fps = row["fps"] if row.get("fps") else (1e3 / ms if ms else None)
        backend = row["backend"]
        err = row.get("median_rel_error")
        is_reference = (row["key"].startswith("ours_fp32") and row["execution"] == "f32"
                        and not row.get("fps"))
        err_text = ("reference" if is_reference
                    else _fmt(100 * err, 2, " %") if err is not None else "—")
        lines.append(
            f"| {backend} | {row['weights']} | {row['execution']} | {row['input']} | "
            f"{_fmt(latency.get('median_ms'))} | {_fmt(latency.get('p90_ms'))} | "
            f"{_fmt(fps, 2)} | {_fmt(row.get('gflops_per_s'), 0)} | "
            f"{_fmt(100 * row['peak_fraction'] if row.get('peak_fraction') else None, 0, ' %')} | "
            f"{_fmt(100 * row['fc_fraction'] if row.get('fc_fraction') else None, 0, ' %')} | "
            f"{_fmt(_ratio(rows.get('pytorch'), row), 2)} | "
            f"{_fmt(_ratio(rows.get('onnxruntime'), row), 2)} | "
            f"{_fmt(_ratio(rows.get('ov_naive'), row), 2)} | {err_text} |")
    extra = section["baseline_extra_ms"]
    ceiling = ", ".join(f"{k} {v:.0f}"
                        for k, v in section.get("fc_ceiling", {}).get("gflops", {}).items())
    baselines = (f"Baseline rows time the network call on a preprocessed f32 tensor; they "
                 f"would also need numpy preprocessing "
                 f"({extra['numpy_preprocess']['median_ms']:.1f} ms) and the resize back to "
                 f"camera size ({extra['resize_back']['median_ms']:.1f} ms). Our rows include "
                 "both." if extra else "No baselines for this model: our rows (u8 camera "
                 "image to every output at camera size) stand beside the other model's.")
    lines += ["", f"{baselines} FC ceiling (best FullyConnected layer with constant weights, "
              f"timed alone in the same rounds, below): {ceiling} GFLOP/s.{_pressure(section)}"]
    if section.get("time_split"):
        lines += ["", limits_tables(section)]
    return "\n".join(lines)


def limits_tables(section: dict) -> str:
    """Render where the FP16 IR's time goes, the bound of each part, and the bounds' inputs."""
    split = section["time_split"]
    ours = _rows_by_key(section).get("ours_fp16") or {}
    wall = (ours.get("latency") or {}).get("median_ms")
    lines = [f"#### Where the time goes: our FP16 IR computing in {split['execution']} "
             f"(per-layer profile, median of the rounds)", "",
             "| part | ms | share of frame |", "|---|---:|---:|"]
    for part in split["parts"]:
        lines.append(f"| {part['part']} | {part['ms']:.1f} | {100 * part['share']:.0f} % |")
    lines.append(f"| **all layers** | **{split['total_ms']:.1f}** | |")
    blocks = split.get("attention_blocks_ms") or []
    if blocks:
        lines += ["", f"Attention per transformer block: median {statistics.median(blocks):.1f} ms "
                  f"({min(blocks):.1f} to {max(blocks):.1f}) over {len(blocks)} blocks. "
                  f"The whole request (ours FP16, default row) took {_fmt(wall)} ms."]
    if split.get("limits"):
        lines += ["", "#### Which limit each part is near", "",
                  "| part | work | measured ms | bound ms | bound | measured / bound |",
                  "|---|---|---:|---:|---|---:|"]
        for row in split["limits"]:
            lines.append(f"| {row['part']} | {row['work']} | {_fmt(row['measured_ms'])} | "
                         f"{_fmt(row['bound_ms'])} | {row['bound']} | "
                         f"{_fmt(row['measured_over_bound'], 2, 'x')} |")
    lines += ["", "#### FC ceiling: FullyConnected layers with constant weights, alone", "",
              "| computes in | weights | tokens x in -> out | layers in model | kernel | "
              "best ms | GFLOP/s (best) | GFLOP/s (median) |",
              "|---|---|---|---:|---|---:|---:|---:|"]
    for row in section["fc_ceiling"]["shapes"]:
        lines.append(f"| {row['precision']} | {row['weights']} | "
                     f"{row['m']} x {row['k']} -> {row['n']} | "
                     f"{row['in_model']} | {row['kernel']} | {row['best_ms']:.2f} | "
                     f"{row['gflops_best']:.0f} | {row['gflops_median']:.0f} |")
    softmax = section.get("softmax_bound")
    if softmax:
        lines += ["", f"#### Softmax bound: {softmax['exponentials'] / 1e6:.1f} M exponentials "
                  "per frame", "",
                  "| Softmax input | of attention | kernel | best ms | G exp/s |",
                  "|---|---|---|---:|---:|"]
        for row in softmax["rows"]:
            lines.append(f"| {'x'.join(map(str, row['shape']))} | "
                         f"{row['layers']} x {'x'.join(map(str, row['attention']))} | "
                         f"{row['kernel']} | {row['best_ms']:.2f} | {row['gexp_per_s']:.2f} |")
        lines += ["", f"Bound: {softmax['bound_ms']:.1f} ms per frame at the best rate; "
                  f"{softmax['full_shape_ms']:.1f} ms for the whole attention-shaped Softmax "
                  "alone, once per layer."]
    return "\n".join(lines)


def sides_table(section: dict, encoder: str) -> str:
    """Render model-only speed by network short side, tokens per frame alongside."""
    cam = section["camera_size"]
    lines = [f"### Model only by network short side: {encoder}, our FP16 IR, camera "
             f"{cam[0]}x{cam[1]}", "",
             "| short side | network | tokens | computes in | LATENCY median ms | p90 ms | "
             "frames/s | THROUGHPUT frames/s |", "|---:|---|---:|---|---:|---:|---:|---:|"]
    for row in section["rows"]:
        net = row["network_size"]
        lines.append(f"| {row['side']} | {net[0]}x{net[1]} | {row['tokens']} | "
                     f"{row['execution']} | {row['latency']['median_ms']:.1f} | "
                     f"{row['latency']['p90_ms']:.1f} | {row['latency_fps']:.2f} | "
                     f"{row['throughput_fps']:.2f} ({row['streams']} streams, "
                     f"{row['requests']} requests) |")
    lines += ["", "LATENCY: `DepthEngine.infer` from the u8 camera image to depth at camera "
              "size; THROUGHPUT: the plugin's streams fed by an AsyncInferQueue (host resize "
              f"done beforehand).{_pressure(section)}"]
    return "\n".join(lines)


def pipeline_table(section: dict) -> str:
    cam = section["camera_size"]
    lines = [f"### Node pipeline stages: camera {cam[0]}x{cam[1]}, our FP16 IR computing in "
             f"{section['execution']}", "", "| stage | median ms | p90 ms |", "|---|---:|---:|"]
    for stage in section["stages"]:
        latency = stage["latency"]
        lines.append(f"| {stage['stage']} | {_fmt(latency['median_ms'], 2)} | "
                     f"{_fmt(latency.get('p90_ms'), 2)} |")
    lines.append(f"| **total (sum of medians, serial)** | **{section['total_median_ms']:.1f}** | |")
    if section.get("cpu_pressure") is not None:
        lines += ["", _pressure(section).strip()]
    lines += ["", "#### Filling `msg.data` from a numpy buffer", "",
              "| payload | field checks | method | median ms |", "|---|---|---|---:|"]
    for item in section["msg_fill"]:
        lines.append(f"| {item['payload']} ({item['bytes'] / 2**20:.1f} MB) | "
                     f"{'on' if item['check_fields'] else 'off'} | {item['method']} | "
                     f"{_fmt(item['latency']['median_ms'], 2)} |")
    return "\n".join(lines)


def _lat(entry: dict | None) -> str:
    if not entry:
        return "—"
    return f"{entry['median_ms']:.1f} ({entry['p90_ms']:.1f})"


def expected_rate(sus: dict, model_only_ms: float) -> float:
    """Return what a perfect pipeline would output: the camera rate or 1/model-only, the lower."""
    return min(sus["camera_hz"], 1e3 / model_only_ms)


THROUGHPUT_LABEL = "THROUGHPUT hint, 2 inference workers, reliable input"


def _sustained_row(label: str, sus: dict, model_only_ms: float) -> str:
    growth = sus.get("latency_growth")
    received = sus.get("node_received_fraction")
    received_pct = _fmt(100 * received if received is not None else None, 0, " %")
    return (f"| {label}: camera at {sus['camera_hz']:g} Hz for {sus['duration_s']:g} s | "
            f"{_lat(sus['depth'])} | {_lat(sus['colorized'])} | {_lat(sus['points'])} | "
            f"{_lat(sus['all'])} | {sus['frames']} of {sus['published']} | "
            f"{sus['output_hz']:.2f} outputs/s = "
            f"{sus['output_hz'] / expected_rate(sus, model_only_ms):.2f}x min(camera rate, "
            f"1/model-only); node received {received_pct} of the frames and published "
            f"{_fmt(sus.get('node_output_hz'), 2)} outputs/s; its engine.infer "
            f"took {_fmt(sus.get('node_inference_ms'))} ms; "
            f"latency last/first third {_fmt(growth, 2)}x |")


def ros_table(section: dict) -> str:
    seq = section["sequential"]
    cam = section["camera_size"]
    model_ms = section["model_only_ms"]
    lines = [f"### Through ROS 2: camera {cam[0]}x{cam[1]} -> node process -> subscriber "
             f"(model only: {model_ms:.1f} ms)", "",
             "Latency in ms, median (p90), from the camera stamp to the output's arrival in "
             "another process.", "",
             "| measurement | depth | colorized | cloud | all three | frames | result |",
             "|---|---:|---:|---:|---:|---:|---|"]
    lines.append(f"| input_qos reliable: one frame in flight | {_lat(seq['depth'])} | "
                 f"{_lat(seq['colorized'])} | {_lat(seq['points'])} | {_lat(seq['all'])} | "
                 f"{seq['frames']} ({seq['lost']} lost) | "
                 f"{_fmt(section['latency_ratio'], 2)}x model-only; the node's engine.infer "
                 f"took {_fmt(seq.get('node_inference_ms'))} ms |")
    lines.append(_sustained_row("input_qos reliable", section["sustained"], model_ms))
    if section.get("sustained_best_effort"):
        lines.append(_sustained_row("node defaults (best-effort input)",
                                    section["sustained_best_effort"], model_ms))
    if section.get("sustained_throughput"):
        lines.append(_sustained_row(THROUGHPUT_LABEL, section["sustained_throughput"], model_ms))
    lines += ["", f"Node peak RSS: {_fmt(section['node_peak_rss_mb'], 0)} MB."]
    return "\n".join(lines)


def startup_table(section: dict) -> str:
    lines = ["### Startup: node process start -> first depth image received", "",
             "| start | first depth image s | node peak RSS MB | cache MB |",
             "|---|---:|---:|---:|"]
    for start in section["node"]:
        lines.append(f"| {start['start']} | {start['first_depth_s']:.2f} | "
                     f"{_fmt(start['peak_rss_mb'], 0)} | {start['cache_mb']:.0f} |")
    engine = section["engine_first_frame_s"]
    lines += ["", f"In-process `DepthEngine` construction + first frame: {engine['cold']:.2f} s "
              f"cold, {engine['cached']:.2f} s with the cache."]
    return "\n".join(lines)


def target_checks(results: dict) -> list[tuple[str, str, str, bool | None]]:
    """(target, threshold, measured, met) for every target the run has data for."""
    checks: list[tuple[str, str, str, bool | None]] = []
    for size_key, section in results.get("model", {}).items():
        if "rows" not in section:
            continue
        rows = _rows_by_key(section)
        fp16 = rows.get("ours_fp16")
        for key, name, target in (("onnxruntime", "ONNX Runtime", "ours_vs_onnxruntime"),
                                  ("pytorch", "PyTorch eager", "ours_vs_pytorch"),
                                  ("ov_naive", "naive OpenVINO IR", "ours_vs_naive")):
            ratio = _ratio(rows.get(key), fp16)
            if ratio is not None:
                checks.append((f"{size_key}: ours FP16 vs {name} (network call only)",
                               f">= {TARGETS[target]}x", f"{ratio:.2f}x",
                               ratio >= TARGETS[target]))
        naive = rows.get("ov_naive")
        if naive and fp16 and naive.get("latency") and fp16.get("latency"):
            extra = section["baseline_extra_ms"]
            same_work = (naive["latency"]["median_ms"] + extra["numpy_preprocess"]["median_ms"]
                         + extra["resize_back"]["median_ms"])
            ratio = same_work / fp16["latency"]["median_ms"]
            checks.append((f"{size_key}: ours FP16 vs naive OpenVINO IR + its numpy "
                           "preprocessing and resize (same work)", ">= 1.0x", f"{ratio:.2f}x",
                           ratio >= TARGETS["ours_vs_naive"]))
        int8 = rows.get("ours_int8")
        ratio = _ratio(fp16, int8)
        if ratio is not None:
            error = int8.get("median_rel_error")
            error_pct = _fmt(100 * error if error is not None else None, 2)
            met = ratio >= TARGETS["int8_vs_fp16"] and (
                error is not None and error <= TARGETS["int8_max_median_error"])
            checks.append((f"{size_key}: INT8 vs FP16 (default precision)",
                           f">= {TARGETS['int8_vs_fp16']}x at <= 1 % median error",
                           f"{ratio:.2f}x at {error_pct} %",
                           met))
    ros = results.get("ros")
    if ros and "sequential" in ros:
        ratio = ros["latency_ratio"]
        checks.append(("end-to-end latency / model-only (one frame in flight)",
                       f"<= {TARGETS['e2e_over_model']}x", _fmt(ratio, 2, "x"),
                       ratio is not None and ratio <= TARGETS["e2e_over_model"]))
        for key, label in (("sustained", "input_qos reliable"),
                           ("sustained_best_effort", "node defaults"),
                           ("sustained_throughput", THROUGHPUT_LABEL)):
            sustained = ros.get(key)
            if sustained:
                # The node's own count of finished frames: what it achieves, independent
                # of how many outputs this benchmark's Python subscriber keeps up with.
                rate = sustained.get("node_output_hz") or sustained["output_hz"]
                ratio = rate / expected_rate(sustained, ros["model_only_ms"])
                checks.append((f"{sustained['camera_hz']:g} Hz camera, {label}: node output "
                               "rate / min(camera rate, 1/model-only)",
                               f">= {TARGETS['rate_over_model']}", f"{ratio:.2f}",
                               ratio >= TARGETS["rate_over_model"]))
    startup = results.get("startup")
    if startup and "node" in startup and len(startup["node"]) > 1:
        warm = startup["node"][1]["first_depth_s"]
        checks.append(("second start to first depth image", f"<= {TARGETS['warm_start_s']} s",
                       f"{warm:.2f} s", warm <= TARGETS["warm_start_s"]))
    return checks


def markdown(results: dict) -> str:
    meta = results["meta"]
    machine = meta["machine"]
    load = meta["load_average"]
    parts = [f"## depth_anything_ros benchmark ({meta['started']})", "",
             f"{machine['cpu_model']}: {machine['physical_cores']} cores, {machine['ghz']} GHz, "
             f"{machine['isa']}; rough peak {machine['peak_gflops']['f32']:.0f} GFLOP/s f32, "
             f"{machine['peak_gflops']['bf16']:.0f} bf16, {machine['peak_gflops']['int8']:.0f} "
             f"int8 ({machine['assumption']}). "
             f"Load average (1 min) {load['start']:.2f} at start, {load['end']:.2f} at end. "
             f"{meta['runs']} timed runs after {meta['warmup']} warm-up; "
             f"{', '.join(f'{k} {v}' for k, v in meta['versions'].items())}.", ""]
    for size_key, section in results.get("model", {}).items():
        parts += [model_table(size_key, section, meta["encoder"]) if "rows" in section
                  else f"### Model {size_key}: failed: {section['error']}", ""]
    sides = results.get("model_sides")
    if sides:
        parts += [sides_table(sides, meta["encoder"]) if "rows" in sides
                  else f"### Model by network short side: failed: {sides['error']}", ""]
    for name, render in (("pipeline", pipeline_table), ("ros", ros_table),
                         ("startup", startup_table)):
        section = results.get(name)
        if section is None:
            continue
        parts += [render(section) if "error" not in section
                  else f"### {name}: failed\n\n```\n{section['error']}\n```", ""]
    checks = target_checks(results)
    if checks:
        parts += ["### Targets (issue 5)", "", "| target | wanted | measured | met |",
                  "|---|---|---|---|"]
        parts += [f"| {name} | {want} | {got} | {'yes' if met else 'NO'} |"
                  for name, want, got, met in checks]
        parts.append("")
    return "\n".join(parts)


def draw_chart(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model = {k: v for k, v in results.get("model", {}).items() if "rows" in v}
    pipeline = results.get("pipeline")
    panels = len(model) + (1 if pipeline and "stages" in pipeline else 0)
    if not panels:
        return
    fig, axes = plt.subplots(panels, 1, figsize=(11, 4.2 * panels), squeeze=False)
    axes = axes[:, 0]
    for ax, (size_key, section) in zip(axes, model.items()):
        rows = section["rows"]
        labels = [f"{r['backend']} [{r['execution']}]" for r in rows]
        values = [_ms_per_frame(r) or 0.0 for r in rows]
        spread = [((r["latency"]["p90_ms"] - r["latency"]["median_ms"]) if r.get("latency")
                   else 0.0) for r in rows]
        colors = ["#8c8c8c" if not r["key"].startswith("ours") else
                  "#2ca02c" if r.get("fps") else "#1f77b4" for r in rows]
        y = range(len(rows))
        ax.barh(y, values, xerr=[[0] * len(rows), spread], color=colors)
        ax.set_yticks(list(y), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("ms per frame (bar: median, whisker: p90; green: async throughput)")
        ax.set_title(f"{section.get('model', results['meta']['encoder'])} model only, "
                     f"network {section['network_size'][0]}x{section['network_size'][1]}")
        for index, (value, extra) in enumerate(zip(values, spread)):
            ax.text(value + extra, index, f" {value:.0f}", va="center", fontsize=8)
    if panels > len(model):
        ax = axes[-1]
        stages = [s for s in pipeline["stages"] if s["in_total"]]
        values = [s["latency"]["median_ms"] for s in stages]
        y = range(len(stages))
        ax.barh(y, values, color="#ff7f0e")
        ax.set_yticks(list(y), [s["stage"] for s in stages], fontsize=8)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlim(right=max(values) * 5)  # room for the value labels
        ax.set_xlabel("median ms (log scale)")
        ax.set_title(f"node pipeline stages, camera {pipeline['camera_size'][0]}x"
                     f"{pipeline['camera_size'][1]} (total {pipeline['total_median_ms']:.0f} ms)")
        for index, value in enumerate(values):
            ax.text(value, index, f" {value:.3g}", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_all(results: dict, out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    text = markdown(results)
    (out / "results.md").write_text(text)
    draw_chart(results, out / "results.png")
    return text


if __name__ == "__main__":
    source = Path(sys.argv[1])
    print(write_all(json.loads(source.read_text()), source.parent))
