"""The launch file, rviz config and package metadata agree with the node.

launch/launch_ros cannot be installed here, so the launch file is read as a Python
syntax tree: what it would start (package, executable, parameters file, remappings)
must exist in setup.py, package.xml, config/ and the node's topic names.
"""

from __future__ import annotations

import ast
import glob
from pathlib import Path
from typing import Any
import xml.etree.ElementTree as ET

import pytest
import yaml

from depth_anything_ros.pipeline.parameters import defaults
from depth_anything_ros.ros import node as depth_node

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILE = ROOT / "launch" / "depth.launch.py"


class Config:
    """Stands for LaunchConfiguration('name') in evaluated launch expressions."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and other.name == self.name

    def __repr__(self) -> str:
        return f"Config({self.name!r})"


class Evaluator:
    """Evaluates the literal subset of a module.

    Constants, module-level names, lists/dicts, f-strings, and a few launch substitutions as
    plain markers.
    """

    def __init__(self, tree: ast.Module) -> None:
        self.names: dict[str, Any] = {}
        for stmt in tree.body:
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(
                    stmt.targets[0], ast.Name):
                try:
                    self.names[stmt.targets[0].id] = self(stmt.value)
                except ValueError:
                    pass

    def __call__(self, node: ast.AST, scope: dict[str, Any] | None = None) -> Any:
        scope = {**self.names, **(scope or {})}
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name) and node.id in scope:
            return scope[node.id]
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self(e, scope) for e in node.elts]
        if isinstance(node, ast.Dict):
            return {self(k, scope): self(v, scope) for k, v in zip(node.keys, node.values)}
        if isinstance(node, ast.JoinedStr):
            return "".join(str(self(v.value if isinstance(v, ast.FormattedValue) else v, scope))
                           for v in node.values)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return self(node.left, scope) + self(node.right, scope)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            args = [self(a, scope) for a in node.args]
            if callable(scope.get(node.func.id)):
                return scope[node.func.id](*args)
            if node.func.id == "LaunchConfiguration":
                return Config(args[0])
            if node.func.id == "FindPackageShare":
                return ("share", args[0])
            if node.func.id == "PathJoinSubstitution":
                return ("join", *args[0])
            if node.func.id == "IfCondition":
                return ("if", args[0])
            if node.func.id == "ParameterValue":
                return args[0]
        raise ValueError(f"not a literal: {ast.dump(node)[:80]}")


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and isinstance(n.func, ast.Name) and n.func.id == name]


def _kwargs(call: ast.Call, evaluate: Evaluator, scope: dict[str, Any]) -> dict[str, Any]:
    return {k.arg: evaluate(k.value, scope) for k in call.keywords if k.arg}


def _kwarg(call: ast.Call, name: str, evaluate: Evaluator, scope: dict[str, Any]) -> Any:
    return next(evaluate(k.value, scope) for k in call.keywords if k.arg == name)


@pytest.fixture(scope="module")
def launch_tree() -> ast.Module:
    return ast.parse(LAUNCH_FILE.read_text(), filename=str(LAUNCH_FILE))


@pytest.fixture(scope="module")
def launch_scope(launch_tree: ast.Module) -> tuple[Evaluator, dict[str, Any]]:
    """Return the Evaluator plus the local names assigned inside generate_launch_description."""
    evaluate = Evaluator(launch_tree)
    func = next(n for n in launch_tree.body
                if isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description")
    scope: dict[str, Any] = {}
    for stmt in func.body:
        if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name):
            try:
                scope[stmt.targets[0].id] = evaluate(stmt.value, scope)
            except ValueError:
                pass
    return evaluate, scope


@pytest.fixture(scope="module")
def setup_py() -> tuple[Evaluator, ast.Module]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    return Evaluator(tree), tree


def _node_calls(launch_tree, launch_scope) -> dict[str, dict[str, Any]]:
    evaluate, scope = launch_scope
    out = {}
    for call in _calls(launch_tree, "Node"):
        kwargs = _kwargs(call, evaluate, scope)
        out[kwargs["executable"]] = kwargs
    return out


def _declared_arguments(launch_tree, launch_scope) -> dict[str, Any]:
    evaluate, scope = launch_scope
    return {evaluate(c.args[0], scope): _kwargs(c, evaluate, scope).get("default_value")
            for c in _calls(launch_tree, "DeclareLaunchArgument")}


def _console_scripts(setup_py) -> dict[str, str]:
    evaluate, tree = setup_py
    setup_call = _calls(tree, "setup")[0]
    entry_points = _kwarg(setup_call, "entry_points", evaluate, {})
    pairs = (s.split("=") for s in entry_points["console_scripts"])
    return {name.strip(): target.strip() for name, target in pairs}


def _data_files(setup_py) -> dict[str, list[str]]:
    """setup.py's data_files with its globs run against this checkout."""
    evaluate, tree = setup_py

    def repo_glob(pattern: str) -> list[str]:
        return sorted(str(Path(f).relative_to(ROOT)) for f in glob.glob(str(ROOT / pattern)))

    data_files = _kwarg(_calls(tree, "setup")[0], "data_files", evaluate, {"glob": repo_glob})
    return dict(data_files)


def test_launch_file_compiles_and_defines_its_entry_point(launch_tree):
    compile(LAUNCH_FILE.read_text(), str(LAUNCH_FILE), "exec")
    names = {n.name for n in launch_tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in names


def test_node_executable_is_the_console_script_of_node_main(launch_tree, launch_scope, setup_py):
    nodes = _node_calls(launch_tree, launch_scope)
    depth = nodes["depth_anything_node"]
    package_name = ET.parse(ROOT / "package.xml").getroot().findtext("name")
    assert depth["package"] == package_name == setup_py[0].names["PACKAGE"]
    assert _console_scripts(setup_py)[depth["executable"]] == "depth_anything_ros.ros.node:main"
    assert callable(depth_node.main)
    assert depth["name"] == depth_node.NODE_NAME
    assert depth["namespace"] == Config("namespace")


def test_installed_files_the_launch_file_refers_to_exist(launch_tree, launch_scope, setup_py):
    args = _declared_arguments(launch_tree, launch_scope)
    assert args["params_file"] == ("join", ("share", "depth_anything_ros"), "config", "depth.yaml")
    rviz = _node_calls(launch_tree, launch_scope)["rviz2"]
    assert rviz["condition"] == ("if", Config("use_rviz"))
    rviz_config = rviz["arguments"][rviz["arguments"].index("-d") + 1]
    assert rviz_config == ("join", ("share", "depth_anything_ros"), "config", "depth.rviz")
    installed = _data_files(setup_py)
    assert "config/depth.yaml" in installed["share/depth_anything_ros/config"]
    assert "config/depth.rviz" in installed["share/depth_anything_ros/config"]
    assert "launch/depth.launch.py" in installed["share/depth_anything_ros/launch"]


def test_parameters_and_remappings_match_the_node(launch_tree, launch_scope):
    args = _declared_arguments(launch_tree, launch_scope)
    required = {"image_topic", "camera_info_topic", "model_path", "device", "autostart",
                "params_file", "namespace", "use_rviz"}
    assert required <= set(args)
    depth = _node_calls(launch_tree, launch_scope)["depth_anything_node"]
    params_file, overrides = depth["parameters"]
    assert params_file == Config("params_file")
    # Launch-argument defaults must not change the node's own defaults.
    for name, value in overrides.items():
        assert value == Config(name)
        default = defaults()[name]  # launch arguments are text: true/false for booleans
        if isinstance(default, bool):
            default = str(default).lower()
        elif isinstance(default, tuple):
            default = f"[{','.join(default)}]"
        assert args[name] == default
    remapped = dict(depth["remappings"])
    assert set(remapped) == {depth_node.TOPIC_IMAGE, depth_node.TOPIC_COMPRESSED,
                             depth_node.TOPIC_CAMERA_INFO}
    assert remapped[depth_node.TOPIC_IMAGE] == Config("image_topic")
    assert remapped[depth_node.TOPIC_COMPRESSED] == [Config("image_topic"), "/compressed"]
    assert remapped[depth_node.TOPIC_CAMERA_INFO] == Config("camera_info_topic")


def test_every_launch_configuration_is_declared(launch_tree, launch_scope):
    declared = set(_declared_arguments(launch_tree, launch_scope))
    used = {c.args[0].value for c in _calls(launch_tree, "LaunchConfiguration")}
    assert used <= declared, used - declared


def test_rviz_shows_the_node_outputs_with_reliable_qos():
    config = yaml.safe_load((ROOT / "config" / "depth.rviz").read_text())
    displays = {d["Class"]: d for d in config["Visualization Manager"]["Displays"]}
    image = displays["rviz_default_plugins/Image"]
    cloud = displays["rviz_default_plugins/PointCloud2"]
    assert image["Topic"]["Value"] == depth_node.TOPIC_COLORIZED
    assert cloud["Topic"]["Value"] == depth_node.TOPIC_POINTS
    assert cloud["Color Transformer"] == "RGB8"
    for display in (image, cloud):
        assert display["Enabled"] is True
        assert display["Topic"]["Reliability Policy"] == "Reliable"
