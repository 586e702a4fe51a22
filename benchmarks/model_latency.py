"""Section 'model': one frame through the network, per backend, precision and hint.

Baselines (PyTorch eager, ONNX Runtime, the `ovc`-default IR) get the float NCHW tensor
upstream preprocessing makes, prepared in numpy beforehand, so their rows time the
network call alone; a Depth Anything 3 model is timed without them (its builder says so),
its rows beside V2's in the same run. Our rows time ``DepthEngine.infer`` from the u8
camera image to depth at camera size, i.e. they also pay for the preprocessing and the
output resize: every ratio against a baseline is conservative. The numpy preprocessing
and the resize the baselines would still need are timed separately
(``baseline_extra_ms``).

All variants are loaded first and then timed in interleaved rounds
(``timing.measure_interleaved``): on a machine shared with other work, a busy minute
then slows every variant alike instead of whichever one happened to be running. The
limits the report compares with are timed in the same rounds: the FC ceiling
(``fc_ceiling``), the softmax bound (``softmax_bound``) and our FP16 IR with per-layer
counters for where its time goes (``time_split``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
import time
from typing import Callable

import cv2
import numpy as np

from benchmarks import fc_ceiling, softmax_bound, time_split
from benchmarks.artifacts import HELD_OUT_SEED, ModelBuilder, ModelFiles, scenes
from benchmarks.flops import count_flops
from benchmarks.machine import Machine
from benchmarks.timing import Latency, measure_interleaved, SPIN_PAUSE_S
from depth_anything_ros.inference.engine import DepthEngine, EngineConfig
from depth_anything_ros.inference.preprocess import reference_tensor


@dataclass
class Row:
    key: str                  # stable id used in JSON and by the report
    backend: str
    weights: str              # precision as stored
    execution: str            # precision the runtime computes in (what it reports)
    # "f32 NCHW" (network call only) | "u8 image" (whole engine). Shadows the builtin, but the
    # name is the "input" key of the results JSON (to_json) that the report reads.
    input: str  # noqa: A003
    latency: Latency | None = None
    fps: float | None = None  # throughput rows: frames/s with an async queue
    streams: int | None = None
    requests: int | None = None
    median_rel_error: float | None = None   # vs our FP32 IR run in f32, held-out scenes
    p95_rel_error: float | None = None
    gflops_per_s: float | None = None
    peak_fraction: float | None = None      # of the estimated peak at `execution`
    fc_fraction: float | None = None        # of the FC ceiling at `execution`

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


@dataclass
class _Timed:
    row: Row
    call: Callable[[], object]
    infer: Callable[[np.ndarray], np.ndarray] | None = None  # ours: for the accuracy check


@dataclass
class Queued:
    row: Row
    queue: object             # ov.AsyncInferQueue
    frame: np.ndarray

    def run(self, frames: int) -> float:
        """frames/s for ``frames`` submissions kept ``requests`` deep."""
        started = time.perf_counter()
        for _ in range(frames):
            self.queue.start_async({0: self.frame})
        self.queue.wait_all()
        return frames / (time.perf_counter() - started)


def time_queued(queued: list[Queued], frames: int, log: Callable[[str], None]) -> None:
    """Throughput in chunks of 4 x requests frames, chunks of the variants interleaved.

    Each chunk fills and drains the queue, so the figure is slightly conservative;
    frames/s is the median over chunks.
    """
    if not queued:
        return
    chunk = 4 * max(int(q.row.requests or 1) for q in queued)
    chunks = max(3, frames // chunk)
    for item in queued:
        item.run(chunk)  # warm-up
    rates: list[list[float]] = [[] for _ in queued]
    for _ in range(chunks):
        for index, item in enumerate(queued):
            time.sleep(SPIN_PAUSE_S)
            rates[index].append(item.run(chunk))
    for item, values in zip(queued, rates):
        item.row.fps = float(np.median(values))
        log(f"  {item.row.backend}: {item.row.fps:.2f} frames/s")


def throughput_queue(models: ModelFiles, precision: str, camera: np.ndarray) -> Queued:
    """THROUGHPUT hint: the plugin's streams, fed by an AsyncInferQueue.

    The queue holds as many requests as the plugin asks for.
    """
    import openvino as ov

    engine = DepthEngine(EngineConfig(str(models.ours[precision]), cache_dir="none",
                                      performance_hint="THROUGHPUT"))
    compiled = engine.compiled(*camera.shape[:2])
    requests = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    streams = int(compiled.get_property("NUM_STREAMS"))
    label = (f"ours {precision.upper()} IR, THROUGHPUT hint, async queue "
             f"({streams} streams, {requests} requests)")
    row = Row(f"ours_{precision}_throughput", label, precision, _ov_precision(compiled),
              "u8 image", streams=streams, requests=requests)
    # Prepared once: the host resize (about 1 ms) is left out of these rows.
    return Queued(row, ov.AsyncInferQueue(compiled, requests),
                  engine.network_input(camera).copy())


def _in_turn(calls: list[Callable[[], object]]) -> None:
    """Run OpenVINO-only calls back to back.

    One idle pause per round for all of them instead of one each: the pause is there for
    other runtimes' spinning thread pools, and these share OpenVINO's.
    """
    for call in calls:
        call()


def _ov_precision(compiled) -> str:
    return compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()


def relative_errors(outputs: list[np.ndarray],
                    references: list[np.ndarray]) -> tuple[float, float]:
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

        timed: list[_Timed] = []
        extra_calls: dict[str, Callable[[], object]] = {}
        if self.builder.baselines:
            net_input = reference_tensor(camera, *network_size)
            timed += [self._pytorch(net_input), self._onnxruntime(models, net_input)]
            timed += self._ov_naive(models, net_input)
            # What the baselines would still need to go from camera image to depth, timed
            # alongside them under the same conditions.
            extra_calls = {
                "numpy_preprocess": lambda: reference_tensor(camera, *network_size),
                "resize_back": lambda: cv2.resize(net_input[0, 0], camera_size[::-1],
                                                  interpolation=cv2.INTER_LINEAR),
            }
        for precision in models.ours:
            timed += self._ours(models, precision, camera)
        # The limits, and the FP16 IR with per-layer counters, in the same rounds.
        profiled = time_split.profiled_model(self._engine(models.ours["fp16"]), camera)
        in_model = fc_ceiling.model_fc_shapes(profiled.layers)
        fcs = fc_ceiling.fc_calls(in_model)
        softmaxes = softmax_bound.softmax_calls(flops.softmax_inputs)
        bounds = [c.request for c in fcs] + [c.request for c in softmaxes]
        probes = {"fp16_profiled": profiled.request, "bounds": lambda: _in_turn(bounds)}
        timings = self._time_interleaved(timed, {**extra_calls, **probes})
        extra = {name: timings[name] for name in extra_calls}
        # Best of the rounds: the rate the machine reaches when nothing else interferes.
        ceiling = fc_ceiling.summarize(fcs, s.runs, in_model)
        softmax = softmax_bound.summarize(softmaxes, s.runs, flops.softmax_inputs) \
            if softmaxes else None
        split = {"execution": profiled.execution,
                 **time_split.split(profiled.layers, profiled.request.timed(s.runs))}
        split["limits"] = time_split.limits(split, flops.to_json(), ceiling, softmax)
        if "fp32" in models.ours:
            self._accuracy(models, timed, held_out)
        queued = [throughput_queue(models, p, camera) for p in ("fp16", "int8")
                  if p in models.ours]
        time_queued(queued, s.throughput_frames, self.log)

        rows = [t.row for t in timed] + [q.row for q in queued]
        for row in rows:
            self._add_compute(row, flops.gflops, ceiling["gflops"])
        return {"model": self.builder.encoder, "camera_size": list(camera_size),
                "network_size": list(network_size), "flops": flops.to_json(),
                "fc_ceiling": ceiling, "softmax_bound": softmax,
                "time_split": split, "baseline_extra_ms": extra,
                "rows": [r.to_json() for r in rows]}

    # --- timing --------------------------------------------------------------------

    def _time_interleaved(self, timed: list[_Timed],
                          extra_calls: dict[str, Callable[[], object]]) -> dict[str, dict]:
        """Fill each row's latency; return the extra calls' latencies as JSON."""
        s = self.settings
        self.log(f"  {len(timed)} variants, {s.warmup} warm-up calls each, then {s.runs} "
                 "interleaved rounds")
        latencies = measure_interleaved([item.call for item in timed] + list(extra_calls.values()),
                                        s.runs, s.warmup, SPIN_PAUSE_S)
        extra = {name: latency.to_json()
                 for name, latency in zip(extra_calls, latencies[len(timed):])}
        for item, latency in zip(timed, latencies):
            item.row.latency = latency
            self.log(f"  {item.row.backend}: median {latency.median_ms:.1f} ms, "
                     f"p90 {latency.p90_ms:.1f} ms")
        return extra

    def _accuracy(self, models: ModelFiles, timed: list[_Timed],
                  held_out: list[np.ndarray]) -> None:
        reference = self._engine(models.ours["fp32"], inference_precision="f32")
        references = [reference.infer(image) for image in held_out]
        for item in timed:
            if item.infer is not None:
                outputs = [item.infer(image) for image in held_out]
                item.row.median_rel_error, item.row.p95_rel_error = \
                    relative_errors(outputs, references)

    def _add_compute(self, row: Row, gflops: float, ceiling: dict[str, float]) -> None:
        seconds = row.ms_per_frame / 1e3
        if seconds <= 0:
            return
        row.gflops_per_s = round(gflops / seconds, 1)
        execution = "int8" if row.weights == "int8" else row.execution
        row.peak_fraction = round(row.gflops_per_s / self.machine.peak_for(execution), 4)
        fc = ceiling.get(execution)  # no int8 FC ceiling
        row.fc_fraction = round(row.gflops_per_s / fc, 4) if fc else None

    # --- variants ------------------------------------------------------------------

    def _pytorch(self, net_input: np.ndarray) -> _Timed:
        import torch

        model = self.builder.loaded().model
        tensor = torch.from_numpy(net_input)

        def run() -> None:
            with torch.inference_mode():
                model(tensor)

        version = torch.__version__.split("+")[0]
        return _Timed(Row("pytorch", f"PyTorch {version} eager, {torch.get_num_threads()} "
                          "threads", "fp32", "f32", "f32 NCHW"), run)

    def _onnxruntime(self, models: ModelFiles, net_input: np.ndarray) -> _Timed:
        import onnxruntime as ort

        session = ort.InferenceSession(str(models.onnx), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return _Timed(Row("onnxruntime", f"ONNX Runtime {ort.__version__} CPU", "fp32", "f32",
                          "f32 NCHW"), lambda: session.run(None, {name: net_input}))

    def _ov_naive(self, models: ModelFiles, net_input: np.ndarray) -> list[_Timed]:
        import openvino as ov

        timed: list[_Timed] = []
        for hint in ("", "f32"):
            config = {"INFERENCE_PRECISION_HINT": hint} if hint else {}
            compiled = ov.Core().compile_model(str(models.naive_ir), "CPU", config)
            execution = _ov_precision(compiled)
            if timed and timed[0].row.execution == execution:
                break  # the default already computes in f32: the hint changes nothing
            request = compiled.create_infer_request()
            label = "OpenVINO naive (ovc IR, default)" + (f", {hint} hint" if hint else "")
            timed.append(_Timed(Row("ov_naive" + (f"_{hint}" if hint else ""), label, "fp16",
                                    execution, "f32 NCHW"),
                                lambda request=request: request.infer({0: net_input})))
        return timed

    def _engine(self, xml, **config) -> DepthEngine:
        return DepthEngine(EngineConfig(str(xml), cache_dir="none", **config))

    def _ours(self, models: ModelFiles, precision: str, camera: np.ndarray) -> list[_Timed]:
        """Return rows for the device's default precision, then the f32 hint where that differs.

        Without baselines (a DA3 model) only the default: each row holds a compiled copy of
        the weights, 1.3 GB for a Large model, and the f32 rows are V2's comparison.
        """
        timed: list[_Timed] = []
        for hint in ("", "f32") if self.builder.baselines else ("",):
            engine = self._engine(models.ours[precision], inference_precision=hint)
            execution = _ov_precision(engine.compiled(*camera.shape[:2]))
            if timed and timed[0].row.execution == execution:
                break
            label = f"ours {precision.upper()} IR, " + (f"{hint} hint" if hint else "default")
            timed.append(_Timed(Row(f"ours_{precision}" + (f"_{hint}" if hint else ""), label,
                                    precision, execution, "u8 image"),
                                lambda engine=engine: engine.infer(camera), engine.infer))
        return timed
