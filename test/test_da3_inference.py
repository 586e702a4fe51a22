"""Depth Anything 3 at run time: sizing, upstream's preprocessing, metadata, engine, focal."""

from __future__ import annotations

import dataclasses
from pathlib import Path
import re

import cv2
import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest

from da3_fixtures import GOLDEN_MODELS, GOLDEN_SIZE
from depth_anything_ros.inference.engine import DepthEngine, EngineConfig
from depth_anything_ros.inference.focal import focal_depth_factor
from depth_anything_ros.inference.metadata import MetadataError, ModelMetadata, RT_INFO_SECTION
from depth_anything_ros.inference.preprocess import da3_reference_tensor, da3_resize
from depth_anything_ros.inference.sizing import da3_network_size, da3_resize_steps

DA3_METRIC = ModelMetadata(
    encoder="vitl", depth_type="metric", max_depth=0.0, input_height=GOLDEN_SIZE[0],
    input_width=GOLDEN_SIZE[1], precision="fp32", family="da3", model_name="da3metric-large",
    outputs=(("depth", "focal_depth"), ("sky", "sky")), focal_reference=300.0,
    sky_threshold=0.3)


def _engine(xml: Path) -> DepthEngine:
    return DepthEngine(EngineConfig(str(xml), inference_precision="f32", cache_dir="none"))


@pytest.fixture(scope="module")
def channel_ir(tmp_path_factory) -> Path:
    """Return an IR with DA3 Metric's metadata whose outputs show its input.

    depth = the normalised red plane, sky = relu(the normalised blue plane): the engine's
    preprocessing and output resizing can be read off exactly, without a network.
    """
    image = ops.parameter([1, 3, *GOLDEN_SIZE], np.float32, name="image")
    red = ops.gather(image, ops.constant(np.int64(0)), ops.constant(np.int64(1)))
    blue = ops.gather(image, ops.constant(np.int64(2)), ops.constant(np.int64(1)))
    outputs = []
    for name, node in (("depth", red), ("sky", ops.relu(blue))):
        node.output(0).get_tensor().set_names({name})
        outputs.append(ops.result(node))
    model = ov.Model(outputs, [image], "channels")
    for key, value in DA3_METRIC.to_rt_info().items():
        model.set_rt_info(value, [RT_INFO_SECTION, key])
    xml = tmp_path_factory.mktemp("channel_ir") / "channels.xml"
    ov.save_model(model, str(xml), compress_to_fp16=False)
    return xml


def _bilinear_align_corners(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Upstream's F.interpolate(bilinear, align_corners=True), in float64 numpy."""
    rows = np.linspace(0, plane.shape[0] - 1, size[0])
    cols = np.linspace(0, plane.shape[1] - 1, size[1])
    r0 = np.minimum(np.floor(rows).astype(int), plane.shape[0] - 2)
    c0 = np.minimum(np.floor(cols).astype(int), plane.shape[1] - 2)
    fr, fc = (rows - r0)[:, None], (cols - c0)[None, :]
    p = plane.astype(np.float64)
    top = p[r0][:, c0] * (1 - fc) + p[r0][:, c0 + 1] * fc
    bottom = p[r0 + 1][:, c0] * (1 - fc) + p[r0 + 1][:, c0 + 1] * fc
    return top * (1 - fr) + bottom * fr


@pytest.mark.parametrize("image,steps", [
    ((480, 640), [(378, 504)]),                 # one INTER_AREA resize
    ((360, 640), [(284, 504), (280, 504)]),     # shrink, then to the multiple of 14
    ((504, 504), []),                           # already there
    ((287, 504), [(294, 504)]),                 # 287 = 20 * 14 + 7: ties go up
    ((240, 320), [(378, 504)]),                 # enlarged (INTER_CUBIC)
    ((1080, 1920), [(284, 504), (280, 504)]),
])
def test_upstream_resize_steps(image, steps):
    assert da3_resize_steps(*image) == steps
    assert da3_network_size(*image) == (steps[-1] if steps else image)


def test_too_elongated_image_is_refused():
    with pytest.raises(ValueError, match="too elongated"):
        da3_resize_steps(10, 2000)


@pytest.mark.parametrize("model", GOLDEN_MODELS)
def test_preprocessing_reproduces_upstream_net_input(da3_golden, model):
    golden = da3_golden(model)
    tensor = da3_reference_tensor(golden["input_bgr"], *GOLDEN_SIZE)
    error = float(np.abs(tensor - golden["net_input"]).max())
    print(f"{model}: preprocessing vs upstream net_input, max abs error {error:.1e}")
    # Same OpenCV uint8 resizes and float32 steps as upstream: bit-identical here.
    assert tensor.shape == golden["net_input"].shape and error == 0.0


def test_two_resizes_are_made_when_upstream_makes_two():
    bgr = np.random.default_rng(3).integers(0, 256, (360, 640, 3), np.uint8)
    once = cv2.resize(bgr, (504, 280), interpolation=cv2.INTER_AREA)
    twice = da3_resize(bgr, 280, 504)
    assert twice.shape == (280, 504, 3) and twice.dtype == np.uint8
    assert not np.array_equal(twice, once)  # rounding to uint8 after 284x504 shows
    enlarged = da3_resize(bgr[:120, :160], 378, 504)
    np.testing.assert_array_equal(
        enlarged, cv2.resize(bgr[:120, :160], (504, 378), interpolation=cv2.INTER_CUBIC))


def test_another_cameras_image_goes_straight_to_the_network_size():
    """An IR frozen for 378x504 fed a 360x640 camera: one resize, aspect stretched as V2."""
    bgr = np.random.default_rng(4).integers(0, 256, (360, 640, 3), np.uint8)
    np.testing.assert_array_equal(da3_resize(bgr, 378, 504),
                                  cv2.resize(bgr, (504, 378), interpolation=cv2.INTER_CUBIC))


def test_metric_depth_follows_from_k_via_the_focal_factor(da3_golden):
    golden = da3_golden("da3metric-large")
    k, k_net = golden["K"], golden["K_net"]
    factor = focal_depth_factor(float(k[0, 0]), float(k[1, 1]), (480, 640), GOLDEN_SIZE)
    assert factor == pytest.approx((k_net[0, 0] + k_net[1, 1]) / 2 / 300, rel=1e-7)
    assert factor == pytest.approx(1.3125, rel=1e-12)
    error = np.abs(golden["depth"] * factor - golden["metric_depth"]) / golden["metric_depth"]
    assert float(error.max()) <= 1e-6  # float32 products in a different order
    # Row 0 scales with the width ratio, row 1 with the height ratio.
    assert focal_depth_factor(600.0, 300.0, (480, 640), (240, 640)) == \
        pytest.approx((600.0 + 150.0) / 2 / 300)
    with pytest.raises(ValueError, match="positive"):
        focal_depth_factor(0.0, 500.0, (480, 640), GOLDEN_SIZE)


def test_metadata_round_trip_and_checks():
    assert ModelMetadata.from_rt_info(DA3_METRIC.to_rt_info()) == DA3_METRIC
    assert DA3_METRIC.to_rt_info()["outputs"] == "depth:focal_depth,sky:sky"
    for change, message in (({"outputs": "depth:inverse"}, "unknown output meaning"),
                            ({"focal_reference": "0"}, "focal_reference > 0"),
                            ({"sky_threshold": "0"}, "sky_threshold > 0"),
                            ({"family": "v4"}, "family must be one of"),
                            ({"outputs": "depth"}, "not name:meaning")):
        with pytest.raises(MetadataError, match=message):
            ModelMetadata.from_rt_info({**DA3_METRIC.to_rt_info(), **change})


def test_pre_da3_metadata_reads_as_v2():
    old = {"encoder": "vits", "depth_type": "metric", "max_depth": "20.0",
           "input_height": "140", "input_width": "182"}
    meta = ModelMetadata.from_rt_info(old)
    assert meta.family == "v2" and meta.output_meanings == (("depth", "metric_depth"),)
    relative = ModelMetadata.from_rt_info({**old, "depth_type": "relative", "max_depth": "0"})
    assert relative.output_meanings == (("depth", "relative_inverse_depth"),)


def test_engine_feeds_the_graph_upstreams_input(channel_ir, da3_golden):
    golden = da3_golden("da3metric-large")
    engine = _engine(channel_ir)
    assert engine.output_names == ("depth", "sky")
    port = engine.compiled(480, 640).input(0)
    assert (port.get_element_type().get_type_name(), list(port.get_shape())) == \
        ("u8", [1, *GOLDEN_SIZE, 3])
    net = golden["net_input"][0]
    for order, image in (("bgr", golden["input_bgr"]),
                         ("rgb", np.ascontiguousarray(golden["input_bgr"][..., ::-1]))):
        out = engine.infer_all(image, order, output_size=GOLDEN_SIZE)
        error = max(float(np.abs(out["depth"] - net[0]).max()),
                    float(np.abs(out["sky"] - np.maximum(net[2], 0)).max()))
        print(f"{order}: graph input vs upstream net_input, max abs error {error:.1e}")
        # (x - 255 mean) / (255 std) in the graph vs (x / 255 - mean) / std: float32 rounding.
        assert error <= 1e-5
        np.testing.assert_array_equal(engine.infer(image, order, GOLDEN_SIZE), out["depth"])


def test_every_output_is_resized_to_the_camera_bilinearly(channel_ir, da3_golden):
    engine = _engine(channel_ir)
    image = da3_golden("da3metric-large")["input_bgr"]
    network = engine.infer_all(image, output_size=GOLDEN_SIZE)
    camera = engine.infer_all(image)
    for name in ("depth", "sky"):
        assert camera[name].shape == (480, 640) and camera[name].dtype == np.float32
        expected = _bilinear_align_corners(network[name], (480, 640))
        error = float(np.abs(camera[name] - expected).max() / np.ptp(expected))
        print(f"{name} at camera size vs float64 bilinear: {error:.1e} of range")
        # OpenVINO's float32 coordinates: reached 1.1e-05 of range here; a resize without
        # aligned corners or a nearest one is off by 1e-2.
        assert error <= 5e-5, name


def test_v2_ir_without_the_new_fields_loads_and_infers_the_same(small_relative_ir, golden,
                                                                tmp_path):
    """An IR exported before DA3 (no family, outputs, ...) gives the same depth as today's."""
    text = small_relative_ir.read_text()
    fields = [field.name for field in dataclasses.fields(ModelMetadata)][-5:]
    assert fields == ["family", "model_name", "outputs", "focal_reference", "sky_threshold"]
    old = re.sub(r"\s*<(%s) value=\"[^\"]*\" />" % "|".join(fields), "", text)
    assert all(f"<{field} " not in old for field in fields) and old != text
    old_xml = tmp_path / "old.xml"
    old_xml.write_text(old)
    old_xml.with_suffix(".bin").symlink_to(small_relative_ir.with_suffix(".bin"))
    image = np.ascontiguousarray(golden["input_bgr"][::4, ::4])
    new_engine, old_engine = _engine(small_relative_ir), _engine(old_xml)
    assert old_engine.metadata.family == "v2" and old_engine.output_names == ("depth",)
    np.testing.assert_array_equal(old_engine.infer(image), new_engine.infer(image))
    np.testing.assert_array_equal(old_engine.infer_all(image)["depth"], old_engine.infer(image))


def test_engine_reproduces_upstream_from_the_camera_image(da3_metric_ir, da3_golden):
    """input_bgr -> uint8 resizes -> graph -> depth, sky and metres, as upstream."""
    golden = da3_golden("da3metric-large")
    engine = _engine(da3_metric_ir)
    out = engine.infer_all(golden["input_bgr"], output_size=engine.network_size)
    depth_error = float((np.abs(out["depth"] - golden["depth"]) / golden["depth"]).max())
    sky_error = float(np.abs(out["sky"] - golden["sky"]).max() / golden["sky"].max())
    k = golden["K"]
    metres = out["depth"] * focal_depth_factor(float(k[0, 0]), float(k[1, 1]), (480, 640),
                                               engine.network_size)
    metric_error = float((np.abs(metres - golden["metric_depth"]) / golden["metric_depth"]).max())
    print(f"engine from input_bgr vs upstream: depth {depth_error:.1e} relative, sky "
          f"{sky_error:.1e} of range, metres {metric_error:.1e} relative")
    # Reached here: depth 8.0e-06, sky 3.6e-06, metres 8.0e-06.
    assert max(depth_error, sky_error, metric_error) <= 1e-4
