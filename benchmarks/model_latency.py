"""Section 'model': one frame through the network, per backend, precision and hint.

Baselines (PyTorch eager, ONNX Runtime, the `ovc`-default IR) get the float NCHW tensor
upstream preprocessing makes, prepared in numpy beforehand, so their rows time the
network call alone. Our rows time ``DepthEngine.infer`` from the u8 camera image to depth
at camera size, i.e. they also pay for the in-graph preprocessing and the output resize:
every ratio against a baseline is conservative. The numpy preprocessing and the resize
the baselines would still need are timed separately (``baseline_extra_ms``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable

import cv2
import numpy as np

from benchmarks.artifacts import HELD_OUT_SEED, ModelBuilder, ModelFiles, scenes
from benchmarks.flops import count_flops
from benchmarks.machine import Machine
from benchmarks.timing import Latency, measure
from depth_anything_ros.engine import DepthEngine, EngineConfig
from depth_anything_ros.preprocess import reference_tensor


@dataclass
class Row:
    key: str                  # stable id used in JSON and by the report
    backend: str
    weights: str              # precision as stored
    execution: str            # precision the runtime computes in (what it reports)
    input: str                # "f32 NCHW" (network call only) | "u8 image" (whole engine)
    latency: Latency | None = None
    fps: float | None = None  # throughput rows: frames/s with an async queue
    streams: int | None = None
    requests: int | None = None
    median_rel_error: float | None = None   # vs our FP32 IR run in f32, held-out scenes
    p95_rel_error: float | None = None
    gflops_per_s: float | None = None
    peak_fraction: float | None = None      # of the machine's peak at `execution`

    @property
    def ms_per_frame(self) -> float:
        return 1e3 / self.fps if self.fps else (self.latency.median_ms if self.latency else 0)

    def to_json(self) -> dict:
        out = asdict(self)
        out["latency"] = self.latency.to_json() if self.latency else None
        return out


@dataclass(frozen=True)
class Settings:
    runs: int
    warmup: int
    held_out: int             # scenes for the accuracy columns
    throughput_frames: int


def _ov_precision(compiled) -> str:
    return compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()


def _relative_errors(outputs: list[np.ndarray], references: list[np.ndarray]
                     ) -> tuple[float, float]:
    """Per-pixel |d - ref| / ref, pooled over the held-out images: (median, p95)."""
    errors = np.concatenate([(np.abs(o - r) / np.maximum(np.abs(r), 1e-6)).ravel()
                             for o, r in zip(outputs, references)])
    return float(np.median(errors)), float(np.percentile(errors, 95))


class ModelSection:
    def __init__(self, builder: ModelBuilder, machine: Machine, settings: Settings,
                 log: Callable[[str], None] = print) -> None:
        self.builder = builder
        self.machine = machine
        self.settings = settings
        self.log = log

    def run(self, camera_size: tuple[int, int], network_size: tuple[int, int]) -> dict:
        s = self.settings
        models = self.builder.models(network_size)
        flops = count_flops(models.onnx)
        camera = scenes(1, *camera_size)[0]
        held_out = scenes(s.held_out, *camera_size, first_seed=HELD_OUT_SEED)
        net_input = reference_tensor(camera, *network_size)

        rows = [self._pytorch(net_input), self._onnxruntime(models, net_input)]
        rows += self._ov_naive(models, net_input)
        references: list[np.ndarray] = []
        for precision in models.ours:
            rows += self._ours(models, precision, camera, held_out, references)
        for precision in ("fp16", "int8"):
            if precision in models.ours:
                rows.append(self._throughput(models, precision, camera))
        for row in rows:
            self._add_compute(row, flops.gflops)

        extra = {
            "numpy_preprocess": measure(lambda: reference_tensor(camera, *network_size),
                                        s.runs, 1).to_json(),
            "resize_back": measure(lambda: cv2.resize(net_input[0, 0], camera_size[::-1],
                                                      interpolation=cv2.INTER_LINEAR),
                                   s.runs, 1).to_json(),
        }
        return {"camera_size": list(camera_size), "network_size": list(network_size),
                "flops": flops.to_json(), "baseline_extra_ms": extra,
                "rows": [r.to_json() for r in rows]}

    def _add_compute(self, row: Row, gflops: float) -> None:
        seconds = row.ms_per_frame / 1e3
        if seconds > 0:
            row.gflops_per_s = round(gflops / seconds, 1)
            execution = "int8" if row.weights == "int8" else row.execution
            row.peak_fraction = round(row.gflops_per_s / self.machine.peak_for(execution), 4)

    def _timed(self, label: str, fn: Callable[[], object]) -> Latency:
        started = time.perf_counter()
        latency = measure(fn, self.settings.runs, self.settings.warmup)
        self.log(f"  {label}: median {latency.median_ms:.1f} ms, p90 {latency.p90_ms:.1f} ms "
                 f"({time.perf_counter() - started:.0f} s)")
        return latency

    def _pytorch(self, net_input: np.ndarray) -> Row:
        import torch

        model = self.builder.loaded().model
        tensor = torch.from_numpy(net_input)

        def run() -> None:
            with torch.inference_mode():
                model(tensor)

        latency = self._timed(f"PyTorch eager ({torch.get_num_threads()} threads)", run)
        return Row("pytorch", f"PyTorch {torch.__version__.split('+')[0]} eager", "fp32",
                   "f32", "f32 NCHW", latency)

    def _onnxruntime(self, models: ModelFiles, net_input: np.ndarray) -> Row:
        import onnxruntime as ort

        session = ort.InferenceSession(str(models.onnx), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        latency = self._timed("ONNX Runtime CPU", lambda: session.run(None, {name: net_input}))
        return Row("onnxruntime", f"ONNX Runtime {ort.__version__} CPU", "fp32", "f32",
                   "f32 NCHW", latency)

    def _ov_naive(self, models: ModelFiles, net_input: np.ndarray) -> list[Row]:
        import openvino as ov

        rows = []
        for hint in ("", "f32"):
            core = ov.Core()
            config = {"INFERENCE_PRECISION_HINT": hint} if hint else {}
            compiled = core.compile_model(str(models.naive_ir), "CPU", config)
            execution = _ov_precision(compiled)
            if hint and rows and rows[0].execution == execution:
                break  # the default already computes in f32: the hint changes nothing
            request = compiled.create_infer_request()
            label = "OpenVINO naive (ovc IR, default)" + (f", {hint} hint" if hint else "")
            latency = self._timed(label, lambda: request.infer({0: net_input}))
            rows.append(Row("ov_naive" + (f"_{hint}" if hint else ""), label, "fp16",
                            execution, "f32 NCHW", latency))
        return rows

    def _engine(self, xml, **config) -> DepthEngine:
        return DepthEngine(EngineConfig(str(xml), cache_dir="none", **config))

    def _ours(self, models: ModelFiles, precision: str, camera: np.ndarray,
              held_out: list[np.ndarray], references: list[np.ndarray]) -> list[Row]:
        """Default precision, then the f32 hint where it differs. The first f32 run of the
        FP32 IR provides the accuracy reference (filled into ``references``)."""
        order = ("f32", "") if precision == "fp32" else ("", "f32")
        rows: list[Row] = []
        seen: set[str] = set()
        height, width = camera.shape[:2]
        for hint in order:
            engine = self._engine(models.ours[precision], inference_precision=hint)
            execution = _ov_precision(engine.compiled(height, width))
            if execution in seen:
                continue  # same computation as the row already measured
            seen.add(execution)
            suffix = f", {hint} hint" if hint else ", default"
            label = f"ours {precision.upper()} IR{suffix}"
            latency = self._timed(label, lambda: engine.infer(camera))
            outputs = [engine.infer(image) for image in held_out]
            if not references:
                references.extend(outputs)
            median, p95 = _relative_errors(outputs, references)
            rows.append(Row(f"ours_{precision}" + (f"_{hint}" if hint else ""), label,
                            precision, execution, "u8 image", latency,
                            median_rel_error=median, p95_rel_error=p95))
        rows.sort(key=lambda r: r.key.endswith("_f32"))  # default first in the table
        return rows

    def _throughput(self, models: ModelFiles, precision: str, camera: np.ndarray) -> Row:
        """THROUGHPUT hint: the plugin's streams, fed by an AsyncInferQueue holding as many
        requests as it asks for."""
        import openvino as ov

        engine = self._engine(models.ours[precision], performance_hint="THROUGHPUT")
        compiled = engine.compiled(*camera.shape[:2])
        requests = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        streams = int(compiled.get_property("NUM_STREAMS"))
        queue = ov.AsyncInferQueue(compiled, requests)
        frame = np.ascontiguousarray(camera)[None]
        frames = max(self.settings.throughput_frames, 2 * requests)
        for _ in range(requests):
            queue.start_async({0: frame})
        queue.wait_all()
        started = time.perf_counter()
        for _ in range(frames):
            queue.start_async({0: frame})
        queue.wait_all()
        fps = frames / (time.perf_counter() - started)
        label = f"ours {precision.upper()} IR, THROUGHPUT hint, async queue"
        self.log(f"  {label}: {fps:.2f} frames/s ({streams} streams, {requests} requests)")
        return Row(f"ours_{precision}_throughput", label, precision,
                   _ov_precision(compiled), "u8 image", None, fps=fps, streams=streams,
                   requests=requests)
