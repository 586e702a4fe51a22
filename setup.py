"""ament_python package definition.

Build-time model export: when DEPTH_ANYTHING_MODELS is set, the install step exports
those models into share/depth_anything_ros/models (see depth_anything_ros/export/build_hook.py).
Unset, the build never touches torch or the network.
"""

from glob import glob
import os
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
            from depth_anything_ros.export.build_hook import export_for_install
            export_for_install(listed, models)


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*", "benchmarks", "benchmarks.*"]),
    package_data={f"{PACKAGE}.ros": ["*.xml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz")
         + [f"{PACKAGE}/ros/fastdds_large_outputs.xml"]),  # also for the user's camera driver
    ],
    # rosbags and tqdm: depth_anything_bag. rosbags below 0.12 because its MCAP storage is
    # subclassed (cli/bag_mcap.py) and the next minor release may change it.
    install_requires=["setuptools", "numpy", "openvino>=2024.0", "opencv-python-headless",
                      "pyyaml", "rosbags>=0.11.9,<0.12", "tqdm"],
    extras_require={
        "export": ["torch", "onnx", "onnxscript", "nncf", "huggingface_hub", "safetensors"],
        "test": ["pytest", "hypothesis", "onnxruntime", "transformers", "matplotlib",
                 "psutil",
                 # test/test_lint.py: what ament_flake8 and ament_pep257 (installed by
                 # scripts/setup.sh) run, pinned so a new release cannot fail the suite.
                 # The plugins are those ament_flake8's package.xml depends on.
                 "flake8==7.5.0", "flake8-blind-except==0.2.1", "flake8-builtins==3.1.0",
                 "flake8-class-newline==1.6.0", "flake8-comprehensions==3.17.0",
                 "flake8-deprecated==2.4.0", "flake8-docstrings==1.7.0",
                 "flake8-import-order==0.19.2", "flake8-quotes==3.4.0", "pydocstyle==6.3.0"],
    },
    cmdclass={"install": InstallWithModels},
    zip_safe=True,
    maintainer="depth_anything_ros maintainers",
    maintainer_email="maintainers@depth-anything-ros.invalid",
    description=("Depth Anything V2 on OpenVINO for ROS 2: metric depth, colorized depth, "
                 "point clouds."),
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            f"depth_anything_node = {PACKAGE}.ros.node:main",
            f"depth_anything_export = {PACKAGE}.export.cli:main",
            f"depth_anything_infer = {PACKAGE}.cli.infer:main",
            f"depth_anything_bag = {PACKAGE}.cli.bag:main",
        ],
    },
)
