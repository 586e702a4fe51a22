#!/usr/bin/env bash
# Set up a venv holding ROS 2 from PyPI wheels, colcon, OpenVINO and the package's export
# and test extras, and build the package with colcon into ./install. Safe to re-run.
#
#   bash scripts/setup.sh                  # ROS 2 Jazzy (LTS) wheels in .venv: the default
#   ROS_WHEELS=kilted VENV=.venv-kilted bash scripts/setup.sh
#
# ROS_WHEELS=jazzy|kilted picks the distro (PyPI has no Humble or Lyrical wheels);
# RUNTIME_ONLY=1 leaves out torch and the export extra, BUILD=0 the colcon build (the test
# legs of scripts/test.sh, which reuse the exported IRs and build their own workspaces).
# For ROS 2 installed from apt, use scripts/install_into_ros.sh instead.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
ROS_WHEELS=${ROS_WHEELS:-jazzy}
case "$ROS_WHEELS" in
  # Jazzy's wheels carry the distro in their names; Kilted's are the unprefixed ones.
  jazzy) prefix=ros-jazzy-; lint_version=0.17.3 ;;
  kilted) prefix=ros-; lint_version=0.19.2 ;;
  *) echo "error: ROS_WHEELS must be jazzy or kilted (PyPI has wheels for those), not '$ROS_WHEELS'" >&2
     exit 1 ;;
esac

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
touch "$VENV/COLCON_IGNORE"  # colcon build --base-paths . must not look inside
. "$VENV/bin/activate"
python -m pip install --quiet --upgrade pip
extras=test
if [ "${RUNTIME_ONLY:-0}" = 0 ]; then
  # torch first and pinned: 2.13.0 is the CPU wheel; an unpinned torch pulled in by nncf
  # would be a multi-GB CUDA build.
  python -m pip install --quiet torch==2.13.0
  extras=export,test
fi
packages=()
for name in rclpy std-msgs sensor-msgs diagnostic-msgs lifecycle-msgs rcl-interfaces \
            ament-index-python rmw-fastrtps-cpp; do
  packages+=("$prefix$name")
done
python -m pip install --quiet "${packages[@]}" colcon-common-extensions
# ROS's lint front-ends for test/test_lint.py, pinned with the flake8 plugins and pydocstyle in
# setup.py's test extra: they bring none of those themselves.
python -m pip install --quiet "${prefix}ament-flake8==$lint_version" \
  "${prefix}ament-pep257==$lint_version"
python -m pip install --quiet -e ".[$extras]"

[ "${BUILD:-1}" = 1 ] || exit 0
colcon build --base-paths . --event-handlers console_direct- > log_colcon_build.txt 2>&1 \
  || { cat log_colcon_build.txt; exit 1; }
rm -f log_colcon_build.txt
echo "ready: . $VENV/bin/activate && . install/setup.bash"
