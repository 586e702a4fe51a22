"""The node's parameters read without ROS, held against the node reading the same file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import rclpy
from rclpy.context import Context
from rclpy.node import Node

from depth_anything_ros.pipeline.parameters import NodeParams, ParameterError
from depth_anything_ros.pipeline.params_file import (node_matches, ParamsSource, parse_override,
                                                     parse_value, unknown_name)
from depth_anything_ros.ros.node import NODE_NAME
from depth_anything_ros.ros.parameters import ParameterStore

ROOT = Path(__file__).resolve().parents[1]


def params_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(body)
    return path


def node_reading(path: Path, namespace: str = "/") -> NodeParams | str:
    """Return what the node makes of a params file: its parameters, or its error text."""
    context = Context()
    rclpy.init(context=context, args=["--ros-args", "--params-file", str(path),
                                      "-r", f"__ns:={namespace}"])
    node = Node(NODE_NAME, context=context)
    try:
        return ParameterStore(node).current
    except ParameterError as exc:
        return str(exc)
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def tool_reading(path: Path, fqn: str = f"/{NODE_NAME}") -> NodeParams | str:
    try:
        return ParamsSource(path).for_node(fqn).params
    except ParameterError as exc:
        return str(exc)


def test_the_shipped_config_gives_the_declared_defaults_in_any_namespace():
    source = ParamsSource(ROOT / "config" / "depth.yaml")
    for fqn in (f"/{NODE_NAME}", f"/robot/front/{NODE_NAME}"):
        loaded = source.for_node(fqn)
        assert loaded.params == NodeParams()
        assert loaded.sections == (f"/**/{NODE_NAME}",)
        assert loaded.unknown == ()


@pytest.mark.parametrize("line", [
    # Refused, each in the node's words.
    "colorize_max_depth: 10", "cloud_stride: 2.0", "cloud_stride: 0", "cloud_stride: '3'",
    "colormap: foo", "colormap: ~", "model_path: 5", "device: ''",
    "reference_extrinsic: [0, 0, 0, 0, 0, 0, 1]", "colorize_min_depth: 20.0",
    "cloud_max_range: 1_000.0", "relative_shift: .inf", "cloud_min_range: .nan",
    "flying_pixel_filter: 1",
    # Accepted, with the value rcl gives them.
    "cloud_min_range: 1e-1", "relative_shift: -.5", "flying_pixel_filter: Off",
    "alignment_min_points: 0x20", "cloud_stride: 010", 'colormap: "gray"',
    "reference_extrinsic: [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]", "cameras: [front, rear]",
])
def test_a_params_file_means_what_it_means_to_the_node(line, tmp_path):
    path = params_file(tmp_path, f"/**/{NODE_NAME}:\n  ros__parameters:\n    {line}\n")
    node, tool = node_reading(path), tool_reading(path)
    assert tool == node
    if line.startswith("colorize_max_depth"):
        assert tool == ("parameter 'colorize_max_depth' has the wrong type; expected a "
                        "floating-point number (write 10.0, not 10)")


SECTIONS = f"""\
/**:
  ros__parameters:
    colormap: gray
{NODE_NAME}:
  ros__parameters:
    cloud_stride: 2
/front/{NODE_NAME}:
  ros__parameters:
    cloud_stride: 3
rear:
  {NODE_NAME}:
    ros__parameters:
      cloud_stride: 4
/*/{NODE_NAME}:
  ros__parameters:
    colorize_min_depth: 0.5
/other_node:
  ros__parameters:
    cloud_stride: 9
"""


@pytest.mark.parametrize("namespace", ["/", "/front", "/rear", "/a/b"])
def test_sections_apply_to_the_nodes_they_name_as_for_the_node(namespace, tmp_path):
    path = params_file(tmp_path, SECTIONS)
    fqn = f"{namespace.rstrip('/')}/{NODE_NAME}"
    assert tool_reading(path, fqn) == node_reading(path, namespace)
    stride = {"/": 2, "/front": 3, "/rear": 4, "/a/b": 1}[namespace]
    assert tool_reading(path, fqn).cloud_stride == stride
    assert tool_reading(path, fqn).colormap == "gray"


def test_command_line_overrides_win_and_are_typed_like_ros(tmp_path):
    path = params_file(tmp_path, f"/**/{NODE_NAME}:\n  ros__parameters:\n    colormap: jet\n")
    loaded = ParamsSource(path, ["colormap:=inferno", "cloud_stride:=4", "cloud_color:=false",
                                 "cloud_min_range:=1e-1", "performance_hint:=THROUGHPUT",
                                 "reference_extrinsic:=[0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]"]
                          ).for_node(f"/{NODE_NAME}")
    assert loaded.params == dataclasses.replace(
        NodeParams(), colormap="inferno", cloud_stride=4, cloud_color=False,
        cloud_min_range=0.1, performance_hint="THROUGHPUT",
        reference_extrinsic=(0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    assert {"colormap", "cloud_stride", "performance_hint"} <= loaded.given
    assert "cloud_max_range" not in loaded.given
    with pytest.raises(ParameterError, match="'cloud_stride' has the wrong type; expected an "
                                             "integer"):
        ParamsSource(None, ["cloud_stride:=4.0"]).for_node(f"/{NODE_NAME}")


@pytest.mark.parametrize("text,value", [
    ("10", 10), ("10.0", 10.0), ("-.5", -0.5), ("1e3", 1000.0), ("true", True), ("off", False),
    ("gray", "gray"), ("'10'", "10"), ("~", "~"), ("[1.0, 2.5]", [1.0, 2.5]), ("0x10", 16),
    ("010", 8)])
def test_values_are_typed_as_rcl_types_them(text, value):
    assert parse_value(text) == value and type(parse_value(text)) is type(value)


def test_malformed_overrides_and_files_are_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match=r"-p takes name:=value .*got 'colormap=gray'"):
        parse_override("colormap=gray")
    with pytest.raises(ValueError, match="cannot read params file .*missing.yaml"):
        ParamsSource(tmp_path / "missing.yaml")
    with pytest.raises(ValueError, match="cannot read params file"):
        ParamsSource(params_file(tmp_path, "a: [unclosed\n"))
    with pytest.raises(ValueError, match="has no '<node name>: ros__parameters:' section"):
        ParamsSource(params_file(tmp_path, "colormap: gray\n"))


def test_unknown_names_are_reported_with_the_closest_real_one(tmp_path):
    path = params_file(tmp_path, f"/**/{NODE_NAME}:\n  ros__parameters:\n    colour_map: gray\n"
                                 "    qos_overrides:\n      /depth/points:\n        publisher:\n"
                                 "          reliability: best_effort\n    use_sim_time: false\n")
    loaded = ParamsSource(path, ["zzz_unrelated:=1"]).for_node(f"/{NODE_NAME}")
    assert loaded.unknown == ("'colour_map' (did you mean 'colormap'?)", "'zzz_unrelated'")
    assert loaded.params == NodeParams()
    assert unknown_name("cloud_strid") == "'cloud_strid' (did you mean 'cloud_stride'?)"


@pytest.mark.parametrize("pattern,fqn,matches", [
    ("/**", "/depth_anything", True), ("/**", "/a/b/depth_anything", True),
    ("/**/depth_anything", "/depth_anything", True),
    ("/**/depth_anything", "/a/b/depth_anything", True),
    ("/*/depth_anything", "/depth_anything", False),
    ("/*/depth_anything", "/a/depth_anything", True),
    ("/depth_anything", "/a/depth_anything", False),
    ("/a/depth_anything", "/a/depth_anything", True),
    ("/**/depth_anything", "/a/other", False)])
def test_node_name_patterns(pattern, fqn, matches):
    assert node_matches(pattern, fqn) is matches
