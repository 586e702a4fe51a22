"""ament_python package definition.

Build-time model export: when DEPTH_ANYTHING_MODELS is set, the install step exports
those models into share/depth_anything_ros/models (see depth_anything_ros/model/build_hook.py).
Unset, the build never touches torch or the network.
"""

import os
from glob import glob
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.install import install

PACKAGE = "depth_anything_ros"


class InstallWithModels(install):
    """Creates share/<pkg>/models (the node's default model_path) and fills it on request."""

    def run(self) -> None:
        super().run()
        models = Path(self.install_data) / "share" / PACKAGE / "models"
        models.mkdir(parents=True, exist_ok=True)
        listed = os.environ.get("DEPTH_ANYTHING_MODELS", "").strip()
        if listed:
            from depth_anything_ros.model.build_hook import export_listed
            export_listed(listed, models)

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*", "benchmarks", "benchmarks.*"]),
    package_data={PACKAGE: ["*.xml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz")
         + [f"{PACKAGE}/fastdds_large_outputs.xml"]),  # also for the user's camera driver
    ],
    install_requires=["setuptools", "numpy", "openvino>=2024.0", "opencv-python-headless"],
    extras_require={
        "export": ["torch", "onnx", "onnxscript", "nncf", "huggingface_hub", "safetensors"],
        "test": ["pytest", "hypothesis", "onnxruntime", "pyyaml", "transformers", "matplotlib", "psutil"],
    },
    cmdclass={"install": InstallWithModels},
    zip_safe=True,
    maintainer="depth_anything_ros maintainers",
    maintainer_email="maintainers@depth-anything-ros.invalid",
    description="Depth Anything V2 on OpenVINO for ROS 2: metric depth, colorized depth, point clouds.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            f"depth_anything_node = {PACKAGE}.node:main",
            f"depth_anything_export = {PACKAGE}.model.cli:main",
            f"depth_anything_infer = {PACKAGE}.infer_cli:main",
        ],
    },
)
