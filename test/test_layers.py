"""The package's layers stay apart: checked in fresh interpreters, module by module.

The node must run where torch is not installed (it is a build-time extra), and the
ROS-free layers must run where ROS is not (the standalone CLI, tools on recorded data,
benchmarks), so an import that crosses a layer is a bug even when everything happens
to be installed here. Each module is imported alone in a new interpreter, because
within one process an earlier import would hide what a later one drags in.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
import subprocess
import sys

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "depth_anything_ros"
LAYERS = ("export", "inference", "geometry", "pipeline", "ros", "cli")
# Top-level modules that belong to ROS: the client library and the message packages.
ROS_MODULES = ("rclpy", "rcl_interfaces", "builtin_interfaces", "std_msgs", "sensor_msgs",
               "diagnostic_msgs", "lifecycle_msgs", "geometry_msgs", "ament_index_python")

PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted({name.split('.')[0] for name in list(sys.modules)})))
"""


def _modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


def _loaded_by(module: str) -> set[str]:
    run = subprocess.run([sys.executable, "-c", PROBE, module], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return set(json.loads(run.stdout.splitlines()[-1]))


def test_the_folder_listing_shows_the_layers():
    present = {p.name for p in PACKAGE_DIR.iterdir() if (p / "__init__.py").is_file()}
    assert present == set(LAYERS)
    loose = {p.name for p in PACKAGE_DIR.glob("*.py")} - {"__init__.py"}
    assert not loose, f"modules outside any layer: {sorted(loose)}"


@pytest.mark.parametrize("module", _modules())
def test_imports_stay_within_their_layer(module):
    layer = module.split(".")[1] if "." in module else ""
    loaded = _loaded_by(module)
    if layer != "ros":
        assert not loaded & set(ROS_MODULES), f"{module} loads {sorted(loaded & set(ROS_MODULES))}"
    if layer != "export":
        assert "torch" not in loaded, f"{module} loads torch"


# The layer order of depth_anything_ros/__init__.py: a module imports from its own layer
# and the ones before it, never after. ``export`` comes last although it runs first: it is
# a build-time tool that writes the model contract ``inference`` reads (metadata, sizing)
# and reports errors the way the other command-line tools do (``cli.errors``).
ORDER = ("inference", "geometry", "pipeline", "ros", "cli", "export")


def _imported_layers(path: Path) -> set[str]:
    """Return the package layers ``path`` imports from (its syntax tree, lazy imports too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "depth_anything_ros" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_the_import_graph_follows_the_layer_order():
    assert set(ORDER) == set(LAYERS)
    crossing = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = path.relative_to(PACKAGE_DIR).parts
        if len(parts) < 2:
            continue
        layer = parts[0]
        later = {other for other in _imported_layers(path)
                 if other in ORDER and ORDER.index(other) > ORDER.index(layer)}
        crossing += [f"{'/'.join(parts)} imports {other}" for other in sorted(later)]
    assert not crossing, crossing
