#!/usr/bin/env bash
# The test command (README "Test"; .ci/run runs exactly this), in four legs:
#
# 1. jazzy:  the whole suite on ROS 2 Jazzy's PyPI wheels (.venv, scripts/setup.sh).
# 2. kilted: the tests that touch rclpy, on Kilted's wheels (.venv-kilted), until Kilted's
#            end of life on 2026-12-31.
# 3. apt:    a stand-in for Ubuntu 24.04 with apt's Jazzy, numpy 1.26.4 and OpenCV 4.6.0
#            (test/apt_sim.sh); scripts/install_into_ros.sh installs the package into it, and
#            the node, pipeline, geometry, bag and fuzz tests run in the venv it made.
# 4. humble-libs: Humble's Python 3.10, numpy 1.21.5 and OpenCV 4.5.4 (Ubuntu 22.04's) under
#            the ROS-free tests; PyPI has no Humble rclpy, so the node's Humble paths run
#            forced on Jazzy instead (ros/compat.py).
#
# Legs 2 to 4 reuse the IRs leg 1 exported ($DEPTH_ANYTHING_TEST_IRS), so they need no torch.
# LEGS="jazzy kilted apt humble-libs" (the default) picks legs; pytest arguments after -- go
# to leg 1.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
legs=${LEGS:-jazzy kilted apt humble-libs}
[ "${1:-}" != "--" ] || shift
export DEPTH_ANYTHING_TEST_IRS="$root/build/test_irs"

# Tests that touch rclpy or message packages: what a different ROS 2 can break.
ROS_TESTS=(test/test_rclpy_compat.py test/test_node_ros.py test/test_node_lifecycle.py
           test/test_node_params.py test/test_ros_codec.py test/test_cloud_msg.py)
# What Ubuntu's numpy and OpenCV can break, and the installed node on them.
APT_TESTS=(test/test_apt_install.py test/test_node_ros.py test/test_node_fuzz.py
           test/test_camera_pipeline.py test/test_input_properties.py test/test_geometry.py
           test/test_rectify.py test/test_flying_pixels.py test/test_alignment.py
           test/test_temporal.py test/test_colorize.py test/test_bag_tool.py
           test/test_engine.py)

# Ubuntu 22.04's numpy and OpenCV under the tests that need no ROS.
HUMBLE_LIBS_TESTS=(test/test_distro_support.py test/test_camera_pipeline.py test/test_engine.py
                   test/test_geometry.py test/test_rectify.py test/test_flying_pixels.py
                   test/test_alignment.py test/test_scale_alignment.py test/test_temporal.py
                   test/test_colorize.py test/test_calibration_ring.py test/test_stamp_order.py
                   test/test_infer_cli.py test/test_precision_choice.py)

leg() { printf '\n=== leg %s: %s\n' "$1" "$2"; }

if [[ " $legs " == *" jazzy "* ]]; then
  leg jazzy "the whole suite on ROS 2 Jazzy (PyPI wheels)"
  rm -rf "$DEPTH_ANYTHING_TEST_IRS"
  mkdir -p "$DEPTH_ANYTHING_TEST_IRS"
  bash scripts/setup.sh
  (
    . .venv/bin/activate
    set +u  # colcon's setup scripts read unset variables
    . install/setup.bash
    set -u
    python -m pytest -q "$@"
  )
fi

if [[ " $legs " == *" kilted "* ]]; then
  leg kilted "rclpy tests on ROS 2 Kilted (PyPI wheels)"
  ROS_WHEELS=kilted VENV=.venv-kilted RUNTIME_ONLY=1 BUILD=0 bash scripts/setup.sh
  .venv-kilted/bin/python -m pytest -q "${ROS_TESTS[@]}"
fi

if [[ " $legs " == *" apt "* ]]; then
  leg apt "install_into_ros.sh on simulated apt Jazzy with numpy 1.26.4 and OpenCV 4.6.0"
  sim=$root/build/apt_sim
  bash test/apt_sim.sh "$sim/system"
  workspace=$sim/ws
  mkdir -p "$workspace/src/depth_anything_ros"
  git ls-files -z | xargs -0 cp --parents -t "$workspace/src/depth_anything_ros"
  (
    . "$sim/system/setup.bash"
    cd "$workspace"
    bash src/depth_anything_ros/scripts/install_into_ros.sh
    . venv/bin/activate
    # pytest and its plugins come from the "system", like apt's python3-pytest.
    cd "$root"
    DEPTH_ANYTHING_APT_WORKSPACE=$workspace python -m pytest -q \
      "${APT_TESTS[@]}"
  )
fi

if [[ " $legs " == *" humble-libs "* ]]; then
  leg humble-libs "ROS-free tests on Python 3.10, numpy 1.21.5 and OpenCV 4.5.4"
  venv=.venv-humble-libs
  if [ ! -x "$venv/bin/python" ]; then
    py310=$(for candidate in python3.10 "$HOME"/.pyenv/versions/3.10*/bin/python3.10; do
              "$candidate" -c "" 2>/dev/null && { echo "$candidate"; break; }; done)
    [ -n "$py310" ] || { echo "error: leg humble-libs needs Python 3.10 (python3.10)" >&2; exit 1; }
    "$py310" -m venv "$venv"
  fi
  "$venv/bin/python" -m pip install --quiet numpy==1.21.5 opencv-python-headless==4.5.4.60 \
    "openvino>=2024.0" "rosbags>=0.11.9,<0.12" pyyaml tqdm pytest hypothesis psutil
  "$venv/bin/python" -m pytest -q "${HUMBLE_LIBS_TESTS[@]}"
fi
