#!/usr/bin/env bash
# Build a stand-in for Ubuntu 24.04 with ROS 2 Jazzy installed from apt, for the apt leg of
# scripts/test.sh:
#
#   bash test/apt_sim.sh DIR
#
# DIR/usr is a "system" Python: this machine's interpreter with a copy of its standard library
# and a site-packages of its own, which plays /usr/lib/python3/dist-packages. It holds what
# apt would install there: numpy 1.26.4 and OpenCV 4.6.0 (Ubuntu 24.04's versions), PyYAML,
# tqdm, colcon, pytest, hypothesis, psutil and ROS 2 Jazzy (PyPI's Jazzy wheels stand in for
# the debs). OpenCV's pip metadata is removed, since Debian's python3-opencv has none: pip
# then cannot see it, as on a real system. DIR/setup.bash plays /opt/ros/jazzy/setup.bash.
# What it cannot imitate: Ubuntu 24.04's Python is 3.12 and PyPI's Jazzy wheels are cp311, so
# the interpreter is this machine's 3.11.
set -euo pipefail

dir=$(realpath -m "${1:?usage: apt_sim.sh DIR}")
base=$(python3 -c 'import sys; print(sys.base_prefix)')
version=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
rm -rf "$dir"
mkdir -p "$dir/usr/bin" "$dir/usr/lib"
cp "$base/bin/python$version" "$dir/usr/bin/"
ln -s "python$version" "$dir/usr/bin/python3"
cp -a "$base/lib/python$version" "$dir/usr/lib/"
(cd "$dir/usr/lib/python$version" \
  && rm -rf site-packages test idlelib tkinter turtledemo \
  && find . -name __pycache__ -prune -exec rm -rf {} + \
  && mkdir site-packages)
python="$dir/usr/bin/python3"
"$python" -m ensurepip --default-pip > /dev/null
"$python" -m pip install --quiet numpy==1.26.4 opencv-python-headless==4.6.0.66 pyyaml tqdm \
  colcon-common-extensions pytest hypothesis psutil \
  ros-jazzy-rclpy ros-jazzy-std-msgs ros-jazzy-sensor-msgs ros-jazzy-diagnostic-msgs \
  ros-jazzy-lifecycle-msgs ros-jazzy-rcl-interfaces ros-jazzy-ament-index-python \
  ros-jazzy-rmw-fastrtps-cpp
rm -rf "$dir/usr/lib/python$version/site-packages"/opencv_python_headless-*.dist-info

# As /opt/ros/jazzy/setup.bash does, the ROS libraries go on LD_LIBRARY_PATH: a venv on top
# must find them (the wheels' own start-up hook looks only in the running prefix).
libs=$(printf '%s:' "$dir/usr/lib" "$dir/usr/lib/python$version/site-packages"/ros_*.libs)
cat > "$dir/setup.bash" <<EOF
# Stand-in for /opt/ros/jazzy/setup.bash (test/apt_sim.sh).
export ROS_DISTRO=jazzy ROS_VERSION=2 ROS_PYTHON_VERSION=3
export PATH="$dir/usr/bin:\$PATH"
export AMENT_PREFIX_PATH="$dir/usr"
export LD_LIBRARY_PATH="$libs\${LD_LIBRARY_PATH:-}"
EOF
echo "simulated apt Jazzy in $dir: source $dir/setup.bash"
