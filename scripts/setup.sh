#!/usr/bin/env bash
# Set up everything in .venv (ROS 2 Kilted wheels, colcon, OpenVINO, the export and test
# extras) and build the package with colcon into ./install. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
# torch first and pinned: 2.13.0 is the CPU wheel; an unpinned torch pulled in by nncf
# would be a multi-GB CUDA build.
python -m pip install --quiet torch==2.13.0
python -m pip install --quiet \
  ros-rclpy ros-std-msgs ros-sensor-msgs ros-diagnostic-msgs ros-rcl-interfaces \
  ros-ament-index-python ros-rmw-fastrtps-cpp colcon-common-extensions
# ROS's lint front-ends for test/test_lint.py, pinned with the flake8 plugins and pydocstyle in
# setup.py's test extra: they bring none of those themselves.
python -m pip install --quiet ros-ament-flake8==0.19.2 ros-ament-pep257==0.19.2
python -m pip install --quiet -e ".[export,test]"

colcon build --base-paths . --event-handlers console_direct- > log_colcon_build.txt 2>&1 \
  || { cat log_colcon_build.txt; exit 1; }
rm -f log_colcon_build.txt
echo "ready: . .venv/bin/activate && . install/setup.bash"
