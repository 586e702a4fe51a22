#!/usr/bin/env bash
# Install depth_anything_ros into a ROS 2 installed from apt (Jazzy on Ubuntu 24.04, Humble on
# 22.04), beside Ubuntu's own numpy and OpenCV, and build it with colcon.
#
#   source /opt/ros/jazzy/setup.bash
#   cd ~/ros2_ws && bash src/depth_anything_ros/scripts/install_into_ros.sh [--export]
#
# Why a venv: Ubuntu 24.04 refuses `pip install` into the system Python (PEP 668), and
# OpenVINO has no apt package or rosdep key. The venv sees the system's packages
# (--system-site-packages), so rclpy, the messages, numpy and cv2 stay apt's, and pip adds
# only what apt lacks: openvino and rosbags (--export: torch and the converters too). A
# constraint pins numpy to the system's version: apt's ROS message packages are compiled
# against numpy 1.x and break beside a numpy 2 in the venv. colcon runs as
# `python -m colcon` from the venv, so the node's launcher uses the venv's Python; the
# venv holds a COLCON_IGNORE so colcon does not search it for packages.
#
# Options: --export adds the export extra (torch and the ONNX/OpenVINO converters, ~1 GB);
# --venv DIR (default: venv in the workspace); the workspace is the current folder.
set -euo pipefail

die() { echo "error: $*" >&2; exit 1; }

here=$(cd "$(dirname "$0")/.." && pwd)
workspace=$PWD
venv=$workspace/venv
extras=()
while [ $# -gt 0 ]; do
  case "$1" in
    --export) extras=(torch==2.13.0 onnx onnxscript nncf huggingface_hub safetensors) ;;
    --venv) venv=$(realpath -m "${2:?--venv needs a folder}"); shift ;;
    *) die "unknown option '$1' (options: --export, --venv DIR)" ;;
  esac
  shift
done

[ -n "${ROS_DISTRO:-}" ] || die "no ROS 2 environment: run 'source /opt/ros/<distro>/setup.bash' first"
case "$here" in
  "$workspace"/src/*) ;;
  *) die "run this from your colcon workspace (the folder holding src/), with the package in src/; here: $workspace" ;;
esac
command -v python3 >/dev/null || die "python3 not found"
python3 -c "import rclpy" 2>/dev/null \
  || die "rclpy does not import: is ROS 2 $ROS_DISTRO installed (apt install ros-$ROS_DISTRO-ros-base)?"
missing=()
for module in numpy cv2 yaml tqdm; do
  python3 -c "import $module" 2>/dev/null || missing+=("$module")
done
[ ${#missing[@]} -eq 0 ] || die "the system Python lacks ${missing[*]}: run 'rosdep install --from-paths src -y --ignore-src' (or apt install python3-numpy python3-opencv python3-yaml python3-tqdm)"

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv --system-site-packages "$venv"
fi
touch "$venv/COLCON_IGNORE"
. "$venv/bin/activate"

# What apt installed stays: pin each such package pip can see to its installed version.
# (apt's OpenCV carries no pip metadata, so pip cannot replace it; nothing here asks for it.)
constraints="$venv/apt-constraints.txt"
python - > "$constraints" <<'EOF'
from importlib import metadata
for name in ("numpy", "PyYAML", "tqdm"):
    try:
        print(f"{name}=={metadata.version(name)}")
    except metadata.PackageNotFoundError:
        pass
EOF
python -m pip install --quiet -c "$constraints" "openvino>=2024.0" "rosbags>=0.11.9,<0.12" \
  "${extras[@]}"
if ! python -m colcon --help >/dev/null 2>&1; then
  die "colcon is not installed: apt install python3-colcon-common-extensions"
fi
python -m colcon build --packages-select depth_anything_ros \
  --event-handlers console_direct- > "$venv/colcon_build.log" 2>&1 \
  || { cat "$venv/colcon_build.log"; die "colcon build failed (log above)"; }
python - <<'EOF'
import cv2, numpy, openvino
print(f"depth_anything_ros built with numpy {numpy.__version__}, OpenCV {cv2.__version__}, "
      f"OpenVINO {openvino.__version__}")
EOF
echo "ready: source install/setup.bash, then: ros2 launch depth_anything_ros depth.launch.py"
echo "(each new shell: source /opt/ros/$ROS_DISTRO/setup.bash && source install/setup.bash)"
