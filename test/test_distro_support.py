"""What installing on another ROS 2 needs from the source: rosdep keys and Python 3.10.

Humble runs Python 3.10 and no Humble rclpy can be installed here, so the package's code is
at least parsed with 3.10's grammar. rosdep installs what package.xml names, so every
module the package imports at run time must map to a key there.
"""

from __future__ import annotations

import ast
from pathlib import Path
import sys
import xml.etree.ElementTree as ElementTree

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*(ROOT / "depth_anything_ros").rglob("*.py"), *(ROOT / "launch").glob("*.py")])

# Top-level module -> the rosdep key that installs it (ROS packages are their own keys).
KEYS = {"numpy": "python3-numpy", "cv2": "python3-opencv", "yaml": "python3-yaml",
        "tqdm": "python3-tqdm", "rosbags": "python3-rosbags-pip",
        "openvino": "python3-openvino-pip"}
# Imported only by export/ at build time: the pip `export` extra, not run-time keys.
EXPORT_EXTRA = {"torch", "nncf", "onnx", "onnxscript", "huggingface_hub", "safetensors"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def _exec_depends() -> set[str]:
    root = ElementTree.parse(ROOT / "package.xml").getroot()
    return {e.text.strip() for e in root.iter() if e.tag in ("depend", "exec_depend")}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_code_parses_as_python_3_10(path):
    ast.parse(path.read_text(), str(path), feature_version=(3, 10))


def test_every_run_time_import_has_a_rosdep_key():
    third_party = set().union(*map(_imports, SOURCES)) - set(sys.stdlib_module_names) - {
        "depth_anything_ros", "__future__"} - EXPORT_EXTRA
    assert third_party, "found no imports: the scan is broken"
    needed = {KEYS.get(name, name) for name in third_party}
    missing = needed - _exec_depends()
    assert not missing, f"package.xml lacks exec_depend keys {sorted(missing)}"


def test_the_openvino_key_is_defined_by_the_shipped_rosdep_file():
    import yaml

    rules = yaml.safe_load((ROOT / "rosdep" / "depth_anything_ros.yaml").read_text())
    for platform in ("ubuntu", "debian"):
        assert rules["python3-openvino-pip"][platform]["pip"]["packages"] == ["openvino"]
