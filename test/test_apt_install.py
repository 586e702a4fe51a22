"""scripts/install_into_ros.sh on a simulated Ubuntu 24.04 with ROS 2 Jazzy from apt.

scripts/test.sh's apt leg builds the stand-in system (test/apt_sim.sh: numpy 1.26.4, OpenCV
4.6.0 and the Jazzy packages in the "system" Python), runs the install script in a
workspace, and runs this file with the node, pipeline, geometry and bag tests inside the
venv the script made. Outside that leg there is no such system to check, so it skips.
"""

from __future__ import annotations

import os
from pathlib import Path
import signal
import sys

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import Image

from ros_camera import Camera, SCENE, wait_for_outputs
from ros_harness import Client, image_array, install_env, start_node

WORKSPACE_ENV = "DEPTH_ANYTHING_APT_WORKSPACE"
UBUNTU_NUMPY, UBUNTU_OPENCV = "1.26.4", "4.6.0"

pytestmark = pytest.mark.skipif(WORKSPACE_ENV not in os.environ,
                                reason="runs in scripts/test.sh's apt leg")


def _is_within(path: str, folder: str) -> bool:
    return Path(path).resolve().is_relative_to(Path(folder).resolve())


def test_numpy_and_opencv_are_still_the_systems():
    assert np.__version__ == UBUNTU_NUMPY
    assert cv2.__version__ == UBUNTU_OPENCV
    for module in (np, cv2):
        assert _is_within(module.__file__, sys.base_prefix), module.__file__
        assert not _is_within(module.__file__, sys.prefix), module.__file__
    venv_site = Path(sys.prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    installed = {p.name.split("-")[0].lower() for p in (venv_site / "site-packages").iterdir()}
    assert not installed & {"numpy", "cv2", "opencv_python", "opencv_python_headless"}
    assert "openvino" in installed  # the one thing apt lacks


def test_the_scripts_node_publishes_depth(tmp_path, small_metric_ir, reference_engine):
    workspace = Path(os.environ[WORKSPACE_ENV])
    env = install_env(workspace, dict(os.environ))
    executable = (workspace / "install" / "depth_anything_ros" / "lib" / "depth_anything_ros"
                  / "depth_anything_node")
    # colcon ran from the venv, so the node starts with the venv's Python and finds OpenVINO.
    assert executable.read_text().splitlines()[0] == f"#!{sys.executable}"
    proc = start_node((workspace, env), tmp_path / "log", [
        "-r", "__ns:=/apt", "-p", f"model_path:={small_metric_ir}",
        "-p", "flying_pixel_filter:=false"])
    client = Client(name="apt_test_client")
    try:
        client.record(Image, "/apt/depth/image")
        camera = Camera(client, "/apt")
        key = wait_for_outputs(client, camera, ["/apt/depth/image"])
        depth = image_array(client.received["/apt/depth/image"][key])
        # The device's default precision, as the node runs.
        expected = reference_engine(small_metric_ir, "").infer(SCENE)
        np.testing.assert_allclose(depth, expected, rtol=1e-4, atol=1e-5)
        rc, _ = proc.stop(signal.SIGINT, 10.0)
        assert rc == 0, proc.output()
    finally:
        client.close()
        proc.stop(signal.SIGKILL, 5.0)
