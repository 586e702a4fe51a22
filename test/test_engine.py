"""The OpenVINO engine: upstream fidelity of the whole pipeline, and its startup errors."""

from __future__ import annotations

from pathlib import Path
import shutil

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest

from depth_anything_ros.inference.engine import DepthEngine, EngineConfig, ModelLoadError
from depth_anything_ros.inference.preprocess import reference_tensor


def _engine(xml: Path, **kwargs) -> DepthEngine:
    kwargs.setdefault("cache_dir", "none")
    return DepthEngine(EngineConfig(str(xml), inference_precision="f32", **kwargs))


def test_full_pipeline_reproduces_upstream_depth(export_ir, golden):
    engine = _engine(export_ir((518, 686), "fp32"))
    depth = engine.infer(golden["input_bgr"])
    ref = golden["depth"]
    error = np.abs(depth - ref)
    span = float(ref.max() - ref.min())
    print(f"pipeline vs upstream infer_image: max {error.max() / span:.2e}, "
          f"mean {error.mean() / span:.2e} of range")
    # In-graph bicubic vs OpenCV's: reached 2.4e-5 of range (7e-5 absolute) here.
    assert depth.shape == ref.shape and depth.dtype == np.float32
    assert error.max() <= 2e-4 * span


def test_in_graph_preprocessing_matches_opencv(export_ir, golden):
    """Feed the IR itself the numpy reference tensor: same depth as the u8 path."""
    xml = export_ir((518, 686), "fp32")
    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    net = compiled(reference_tensor(golden["input_bgr"], 518, 686))[0][0]
    in_graph = _engine(xml).infer(golden["input_bgr"], output_size=(518, 686))
    assert np.abs(in_graph - net).max() <= 2e-4 * float(net.max() - net.min())


def test_graph_input_is_u8_at_network_size_and_float_resized_on_the_host_otherwise(
        small_metric_ir, golden):
    """A camera at the network size feeds u8 to the graph.

    Any other size is resized on the host (OpenCV bicubic in float) and the graph gets that
    float image. Either way the depth equals the IR run on the numpy reference tensor.
    """
    engine = _engine(small_metric_ir)

    def graph_input(height: int, width: int) -> tuple[str, list[int]]:
        port = engine.compiled(height, width).input(0)
        return port.get_element_type().get_type_name(), list(port.get_shape())

    assert graph_input(140, 182) == ("u8", [1, 140, 182, 3])
    assert graph_input(120, 160) == ("f32", [1, 140, 182, 3])
    compiled = ov.Core().compile_model(str(small_metric_ir), "CPU",
                                       {"INFERENCE_PRECISION_HINT": "f32"})
    for bgr in (np.ascontiguousarray(golden["input_bgr"][:140, :182]),
                np.ascontiguousarray(golden["input_bgr"][::4, ::4])):
        net = compiled(reference_tensor(bgr, 140, 182))[0][0]
        depth = engine.infer(bgr, output_size=(140, 182))
        assert np.abs(depth - net).max() <= 2e-4 * float(net.max() - net.min())


def test_rgb_order_and_output_size(small_metric_ir, golden):
    engine = _engine(small_metric_ir)
    bgr = np.ascontiguousarray(golden["input_bgr"][::4, ::4])
    from_bgr = engine.infer(bgr, "bgr")
    from_rgb = engine.infer(np.ascontiguousarray(bgr[..., ::-1]), "rgb")
    np.testing.assert_allclose(from_rgb, from_bgr, rtol=1e-5)  # f32 summation order
    assert engine.infer(bgr, output_size=engine.network_size).shape == (140, 182)
    assert 0 < from_bgr.min() and from_bgr.max() <= 20.0  # sigmoid x 20 m
    assert engine.metadata.is_metric and engine.network_size == (140, 182)


def test_rejects_non_u8_images(small_metric_ir):
    with pytest.raises(ValueError, match=r"expected \(H,W,3\) uint8"):
        _engine(small_metric_ir).infer(np.zeros((10, 10), np.float32))


def test_model_cache_is_written_and_reused(small_metric_ir, tmp_path):
    cache = tmp_path / "cache"
    _engine(small_metric_ir, cache_dir=str(cache)).warmup(48, 64)
    blobs = list(cache.glob("*.blob"))
    assert blobs, "no compiled blob in the cache dir"
    stamp = blobs[0].stat().st_mtime_ns
    _engine(small_metric_ir, cache_dir=str(cache)).warmup(48, 64)
    assert blobs[0].stat().st_mtime_ns == stamp and len(list(cache.glob("*.blob"))) == len(blobs)


def test_missing_model_says_how_to_build(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist; build one with: "
                                             "depth_anything_export"):
        _engine(tmp_path / "nope.xml")
    with pytest.raises(ModelLoadError, match=r"no model \(\.xml\) in .*depth_anything_export"):
        _engine(tmp_path)


def test_folder_with_one_model_is_resolved(small_metric_ir, tmp_path):
    assert _engine(small_metric_ir.parent).model_path == small_metric_ir
    for suffix in (".xml", ".bin"):
        shutil.copy(small_metric_ir.with_suffix(suffix), tmp_path / f"a{suffix}")
        shutil.copy(small_metric_ir.with_suffix(suffix), tmp_path / f"b{suffix}")
    with pytest.raises(ModelLoadError, match=r"several models \(a\.xml, b\.xml\)"):
        _engine(tmp_path)


def test_folder_with_precisions_of_one_model_loads_the_one_for_this_cpu(small_metric_ir,
                                                                        tmp_path):
    from depth_anything_ros.inference.precision_choice import cpu_flags, preference

    for precision in ("fp16", "int8"):
        for suffix in (".xml", ".bin"):
            shutil.copy(small_metric_ir.with_suffix(suffix),
                        tmp_path / f"vits_indoor_140x182_{precision}{suffix}")
    engine = _engine(tmp_path)
    expected = preference("CPU", cpu_flags())[0][0]
    assert engine.model_path.name == f"vits_indoor_140x182_{expected}.xml"
    assert "also there: vits_indoor_140x182_" in engine.model_choice


def test_file_that_is_not_an_ir(tmp_path):
    bad = tmp_path / "model.xml"
    bad.write_text("<not-a-model/>")
    bad.with_suffix(".bin").write_bytes(b"")
    with pytest.raises(ModelLoadError, match="cannot read .* as an OpenVINO IR"):
        _engine(bad)
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"\0")
    with pytest.raises(ModelLoadError, match=r"not an OpenVINO IR \(\.xml\)"):
        _engine(onnx)


def test_ir_without_metadata_names_the_fields(tmp_path):
    image = ops.parameter([1, 3, 28, 28], np.float32)
    model = ov.Model([ops.result(ops.reduce_mean(image, ops.constant(np.array([1])), False))],
                     [image])
    xml = tmp_path / "foreign.xml"
    ov.save_model(model, str(xml))
    with pytest.raises(ModelLoadError, match="no 'depth_anything' metadata .*input_height"):
        _engine(xml)


def test_absent_device_lists_devices_or_falls_back(small_metric_ir):
    with pytest.raises(ModelLoadError, match="device 'NPU' is not available; OpenVINO sees CPU"):
        _engine(small_metric_ir, device="NPU")
    assert _engine(small_metric_ir, device="NPU", allow_cpu_fallback=True).device_name == "CPU"


def test_compiled_graphs_are_bounded(small_metric_ir):
    """A stream of ever new image sizes must not keep a compiled model for each."""
    from depth_anything_ros.inference.engine import MAX_COMPILED
    engine = _engine(small_metric_ir)
    sizes = [(40 + 8 * i, 56) for i in range(MAX_COMPILED + 2)]
    for height, width in sizes:
        assert engine.infer(np.zeros((height, width, 3), np.uint8)).shape == (height, width)
    assert len(engine._compiled) == MAX_COMPILED and len(engine._requests) <= MAX_COMPILED
    assert len(engine._buffers) <= MAX_COMPILED
    assert (sizes[0][0], sizes[0][1], "bgr", sizes[0]) not in engine._compiled


def test_lanes_infer_concurrently_with_the_results_of_one_lane(small_metric_ir, golden):
    """Two threads on their own lanes give each image the depth a single lane gives it.

    Each lane has its own request and host buffers, and the threads run at the same time.
    """
    import threading

    engine = _engine(small_metric_ir, performance_hint="THROUGHPUT")
    images = [np.ascontiguousarray(golden["input_bgr"][::4, ::4]),
              np.ascontiguousarray(golden["input_bgr"][1::4, 1::4])]
    expected = [engine.infer(image) for image in images]
    results: dict[int, list[np.ndarray]] = {0: [], 1: []}

    def run(lane: int) -> None:
        for _ in range(5):
            results[lane].append(engine.infer(images[lane], lane=lane))

    threads = [threading.Thread(target=run, args=(lane,)) for lane in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for lane in (0, 1):
        assert len(results[lane]) == 5
        for depth in results[lane]:
            np.testing.assert_array_equal(depth, expected[lane])
