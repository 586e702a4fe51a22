"""Node parameters on real rclpy nodes.

Declared with descriptors, start values validated, runtime changes validated with a reason,
config/depth.yaml in step with the declarations.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from rcl_interfaces.msg import ParameterType
import rclpy
from rclpy.context import Context
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter
import yaml

from depth_anything_ros.pipeline.parameters import (defaults, FIELDS, NodeParams, ParameterError,
                                                    problems)
from depth_anything_ros.ros.compat import FORCE_FALLBACKS_ENV, has_post_set_callback
from depth_anything_ros.ros.node import DepthNode, NODE_NAME
from depth_anything_ros.ros.parameters import (effective_model_path, PACKAGE, ParameterStore,
                                               RELOAD_NOTE)

ROOT = Path(__file__).resolve().parents[1]

# Parameters whose change needs a new engine, subscription or timer: applied at configure.
RELOAD = {"autostart", "model_path", "device", "performance_hint", "inference_precision",
          "cache_dir", "num_streams", "num_threads", "inference_workers", "allow_cpu_fallback",
          "input_transport", "input_qos", "input_queue_depth", "output_qos",
          "diagnostics_period", "scale_source", "cameras"}


@pytest.fixture
def context():
    ctx = Context()
    rclpy.init(context=ctx)
    yield ctx
    rclpy.try_shutdown(context=ctx)


def make_node(context: Context, **overrides) -> tuple[Node, ParameterStore]:
    node = Node(NODE_NAME, context=context, parameter_overrides=[
        Parameter(name, value=value) for name, value in overrides.items()])
    try:
        return node, ParameterStore(node)
    except BaseException:
        node.destroy_node()
        raise


def test_yaml_lists_every_parameter_with_its_declared_default_and_type():
    config = yaml.safe_load((ROOT / "config" / "depth.yaml").read_text())
    listed = config[f"/**/{NODE_NAME}"]["ros__parameters"]
    declared = defaults()
    # YAML has lists where the table has tuples (array parameters).
    listed = {k: tuple(v) if isinstance(v, list) else v for k, v in listed.items()}
    assert listed == declared
    # 10 == 10.0 in Python, but ROS rejects an integer for a double parameter.
    assert {k: type(v) for k, v in listed.items()} == {k: type(v) for k, v in declared.items()}
    assert all(type(v) is float for v in listed["reference_extrinsic"])
    assert listed["cameras"] == ()


def test_yaml_applies_to_the_node_in_any_namespace(tmp_path):
    config = yaml.safe_load((ROOT / "config" / "depth.yaml").read_text())
    config[f"/**/{NODE_NAME}"]["ros__parameters"].update(cloud_stride=5, colormap="gray")
    edited = tmp_path / "depth.yaml"
    edited.write_text(yaml.safe_dump(config))
    for namespace in ("/", "/robot/front_camera"):
        ctx = Context()
        rclpy.init(context=ctx, args=["--ros-args", "--params-file", str(edited),
                                      "-r", f"__ns:={namespace}"])
        node = Node(NODE_NAME, context=ctx)
        try:
            store = ParameterStore(node)
            assert (store.current.cloud_stride, store.current.colormap) == (5, "gray"), namespace
        finally:
            node.destroy_node()
            rclpy.try_shutdown(context=ctx)


def test_defaults_pass_validation():
    assert problems(NodeParams()) == []


def test_every_parameter_is_declared_with_a_descriptor(context):
    node, store = make_node(context)
    try:
        assert store.current == NodeParams()
        for name, value in defaults().items():
            if value != ():  # an empty array is declared with its type only: unset in ROS
                got = node.get_parameter(name).value
                assert (tuple(got) if isinstance(value, tuple) else got) == value, name
            desc = node.describe_parameter(name)
            assert len(desc.description) > 20, name
            assert not desc.read_only, name  # changeable while unconfigured
            assert desc.description.endswith(RELOAD_NOTE) == (name in RELOAD), name
            if desc.type == ParameterType.PARAMETER_INTEGER:
                assert len(desc.integer_range) == 1, name
                rng = desc.integer_range[0]
                assert rng.from_value <= value <= rng.to_value
            elif desc.type == ParameterType.PARAMETER_DOUBLE:
                assert len(desc.floating_point_range) == 1, name
                rng = desc.floating_point_range[0]
                assert rng.from_value <= value <= rng.to_value
        assert node.describe_parameter("cloud_stride").integer_range[0].from_value == 1
        assert node.describe_parameter("cloud_stride").integer_range[0].to_value == 16
        hfov = node.describe_parameter("fallback_hfov_deg").floating_point_range[0]
        assert (hfov.from_value, hfov.to_value) == (1.0, 179.0)
        assert "'turbo'" in node.describe_parameter("colormap").additional_constraints
    finally:
        node.destroy_node()


def test_valid_overrides_reach_the_snapshot(context):
    node, store = make_node(context, cloud_stride=4, colormap="inferno", cloud_color=False,
                            output_resolution="network", relative_scale=0.25,
                            input_transport="compressed", inference_precision="f32")
    try:
        p = store.current
        assert (p.cloud_stride, p.colormap, p.cloud_color) == (4, "inferno", False)
        assert (p.output_resolution, p.relative_scale) == ("network", 0.25)
        assert (p.input_transport, p.inference_precision) == ("compressed", "f32")
    finally:
        node.destroy_node()


@pytest.mark.parametrize("overrides, name, words", [
    ({"cloud_stride": 0}, "cloud_stride", "[1, 16]"),
    ({"cloud_stride": 17}, "cloud_stride", "[1, 16]"),
    ({"cloud_stride": 2.0}, "cloud_stride", "integer"),
    ({"colorize_max_depth": 10}, "colorize_max_depth", "floating-point"),
    ({"fallback_hfov_deg": 180.0}, "fallback_hfov_deg", "179"),
    ({"cloud_color": "yes"}, "cloud_color", "boolean"),
    ({"colormap": "rainbow"}, "colormap", "'turbo'"),
    ({"input_transport": "theora"}, "input_transport", "'compressed'"),
    ({"input_qos": "best_effort"}, "input_qos", "'sensor_data'"),
    ({"performance_hint": "latency"}, "performance_hint", "'LATENCY'"),
    ({"output_resolution": "native"}, "output_resolution", "'network'"),
    ({"inference_precision": "int8"}, "inference_precision", "'bf16'"),
    ({"device": " "}, "device", "empty"),
    ({"colorize_min_depth": 5.0, "colorize_max_depth": 2.0}, "colorize_max_depth", "exceed"),
    ({"cloud_min_range": 30.0}, "cloud_max_range", "exceed"),
])
def test_invalid_start_values_raise_one_error_naming_the_parameter(context, overrides, name,
                                                                   words):
    with pytest.raises(ParameterError) as caught:
        make_node(context, **overrides)
    assert caught.value.name == name
    message = str(caught.value)
    assert message.startswith(f"parameter '{name}' ")
    assert words in message
    assert "\n" not in message


def _set(node: Node, **values):
    return node.set_parameters([Parameter(k, value=v) for k, v in values.items()])


@pytest.mark.parametrize("apply_in", ["post_set_callback", "on_set_callback"])
def test_runtime_changes_are_validated_and_applied(context, monkeypatch, apply_in):
    """Give one outcome, applied after the values are set or (as on Humble) when validated."""
    if apply_in == "on_set_callback":
        monkeypatch.setenv(FORCE_FALLBACKS_ENV, "1")
    changes = []
    node = Node(NODE_NAME, context=context)
    assert has_post_set_callback(node) == (apply_in == "post_set_callback")
    store = ParameterStore(node, on_change=lambda old, new: changes.append((old, new)))
    try:
        before = store.current
        [ok] = _set(node, colormap="gray")
        assert ok.successful
        assert store.current.colormap == "gray"
        assert changes == [(before, store.current)]

        rejected = {
            "colormap": ("rainbow", "'inferno'"),
            "cloud_stride": (17, "out of range"),
            "colorize_min_depth": (50.0, "colorize_max_depth"),
            "cloud_max_range": (0.05, "cloud_min_range"),
            "model_path": ("/other/model.xml", "read-only"),
            "device": ("GPU", "read-only"),
            "colorize_max_depth": (12, "type"),
        }
        for name, (value, words) in rejected.items():
            [result] = _set(node, **{name: value})
            assert not result.successful, name
            assert words in result.reason, (name, result.reason)
        assert store.current.colormap == "gray" and store.current.cloud_stride == 1
        assert len(changes) == 1

        # Moving a range past its old other end needs both ends in one atomic update.
        result = node.set_parameters_atomically([
            Parameter("colorize_min_depth", value=20.0),
            Parameter("colorize_max_depth", value=40.0)])
        assert result.successful, result.reason
        assert (store.current.colorize_min_depth, store.current.colorize_max_depth) == (20.0, 40.0)
        # Parameters that are not ours pass through untouched.
        assert _set(node, use_sim_time=True)[0].successful
        assert len(changes) == 2
    finally:
        node.destroy_node()


def test_empty_model_path_means_the_installed_models_folder(tmp_path, monkeypatch):
    assert effective_model_path("~/m.xml") == str(Path.home() / "m.xml")
    monkeypatch.delenv("AMENT_PREFIX_PATH", raising=False)
    with pytest.raises(ParameterError) as caught:
        effective_model_path("")
    assert caught.value.name == "model_path"
    assert "-p model_path:=" in str(caught.value)
    # A real ament prefix layout, as colcon installs the package.
    marker = tmp_path / "share" / "ament_index" / "resource_index" / "packages"
    marker.mkdir(parents=True)
    (marker / PACKAGE).touch()
    (tmp_path / "share" / PACKAGE).mkdir()
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path))
    assert effective_model_path("") == str(tmp_path / "share" / PACKAGE / "models")


def test_depth_node_rejects_bad_parameters_before_loading_a_model(context):
    with pytest.raises(ParameterError) as caught:
        DepthNode(context=context, parameter_overrides=[
            Parameter("model_path", value="/nonexistent/model.xml"),
            Parameter("cloud_stride", value=99)])
    assert caught.value.name == "cloud_stride"
    node = DepthNode(context=context, parameter_overrides=[
        Parameter("model_path", value="/nonexistent/model.xml")])
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert "/nonexistent/model.xml" in node.configure_error
    finally:
        node.destroy_node()


def test_depth_node_validates_runtime_changes(context, small_metric_ir):
    node = DepthNode(context=context, parameter_overrides=[
        Parameter("model_path", value=str(small_metric_ir)),
        Parameter("cache_dir", value="none"),
        Parameter("relative_scale", value=2.0)])
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert math.isclose(node.get_parameter("relative_scale").value, 2.0)
        [result] = _set(node, cloud_stride=0)
        assert not result.successful and "cloud_stride" in result.reason
        [result] = _set(node, input_transport="compressed")
        assert not result.successful and "read-only" in result.reason
        results = _set(node, cloud_stride=3, output_resolution="network")
        assert all(r.successful for r in results)
        assert node.get_parameter("cloud_stride").value == 3
    finally:
        node.destroy_node()


def test_fields_table_covers_the_parameters_named_in_the_docs():
    assert set(FIELDS) == {
        "cameras", "model_path", "device", "performance_hint", "inference_precision", "cache_dir",
        "num_streams", "num_threads", "inference_workers", "allow_cpu_fallback",
        "input_transport", "input_qos", "input_queue_depth", "output_qos", "output_resolution",
        "colormap", "colorize_min_depth",
        "colorize_max_depth", "cloud_stride", "cloud_min_range", "cloud_max_range",
        "cloud_color", "relative_scale", "relative_shift", "rectify", "flying_pixel_filter",
        "flying_pixel_min_angle_deg", "flying_pixels_in_depth", "sky_mask",
        "confidence_drop_fraction", "temporal_smoothing",
        "temporal_time_constant", "temporal_change_ratio", "temporal_motion_threshold",
        "scale_source", "reference_max_age", "reference_extrinsic", "camera_height",
        "camera_pitch_deg", "camera_roll_deg", "alignment_min_points", "alignment_max_residual",
        "alignment_time_constant", "alignment_change_ratio",
        "fallback_hfov_deg", "max_pixels", "autostart", "diagnostics_period"}


def test_readme_parameter_table_matches_the_declarations():
    """The README's table is written from these fields.

    A changed default or description there would mislead users more than a missing one.
    """
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("\n## Parameters\n", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip(" `"): line for line in section.splitlines()
            if line.startswith("| `")}
    for name, field in FIELDS.items():
        assert name in rows, f"README lacks a row for {name}"
        assert field.metadata["description"] in rows[name], f"README row of {name} is stale"


def test_unknown_parameters_are_reported_with_the_likely_intended_name(context):
    node, store = make_node(context, colour_map="gray", cloud_strid=2, zzz_unrelated=1)
    try:
        assert store.unknown == ["'cloud_strid' (did you mean 'cloud_stride'?)",
                                 "'colour_map' (did you mean 'colormap'?)", "'zzz_unrelated'"]
    finally:
        node.destroy_node()
    node, store = make_node(context, colormap="gray")
    try:
        assert store.unknown == []
    finally:
        node.destroy_node()
