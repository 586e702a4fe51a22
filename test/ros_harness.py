"""The node under test and the test's own ROS node, for every ROS test.

The node runs as the installed console script, built with colcon into a temporary
workspace and started from its install tree exactly as ``ros2 run`` would (so packaging
mistakes, such as the entry point, data files or setup.cfg's script dir, fail the test),
or in this process with a replaceable engine (``node_in_process``) where only its
behaviour is under test. The test side (``Client``) is an ordinary rclpy node in its own
Context on a test-private ROS_DOMAIN_ID. The rest of the harness: camera publishers in
ros_camera.py, the /diagnostics reader in ros_diagnostics.py, and conftest's fixtures
``launch_node`` (a node from the session's build) and ``reference_engine`` (the standalone
engine outputs are compared with).
"""

from __future__ import annotations

from dataclasses import dataclass, field
import os
from pathlib import Path
import shutil
import signal
import subprocess
import sys
import time
from typing import Any, Callable, Optional

import numpy as np
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import SetParametersResult
from rcl_interfaces.srv import GetParameters, SetParameters
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, PointCloud2

PACKAGE = "depth_anything_ros"
EXECUTABLE = "depth_anything_node"
# Never copied into the workspace: environments, build outputs, large model files.
_NOT_SOURCE = shutil.ignore_patterns(".venv", ".git", "build", "install", "log", "models",
                                     "__pycache__", ".pytest_cache", ".hypothesis", "*.pth",
                                     "*.onnx", "*.bin")


def private_domain_id() -> int:
    """Return a ROS domain private to this test run (1..100: the range safe on Linux)."""
    return 1 + os.getpid() % 100


def colcon_build(repo: Path, workspace: Path, timeout_s: float = 240.0,
                 build_env: Optional[dict[str, str]] = None) -> dict[str, str]:
    """Build a copy of ``repo`` in ``workspace``; return the environment of its install/setup.bash.

    colcon runs from the interpreter's own environment (the venv) so the console
    scripts get its python in their shebang, as a user's ``colcon build`` would.
    ``build_env`` adds variables (DEPTH_ANYTHING_MODELS...) to the build only.
    """
    if not (workspace / "src" / PACKAGE).exists():
        shutil.copytree(repo, workspace / "src" / PACKAGE, ignore=_NOT_SOURCE)
    env = dict(os.environ)
    env.pop("DEPTH_ANYTHING_MODELS", None)  # no model export unless asked for
    env.update(build_env or {})
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    # ``python -m colcon``, not the colcon on PATH: with ROS from apt, colcon is the
    # system's, and its scripts would get the system Python, which lacks OpenVINO.
    build = subprocess.run([sys.executable, "-m", "colcon", "build", "--event-handlers",
                            "console_direct-"],
                           cwd=workspace, env=env, capture_output=True, text=True,
                           timeout=timeout_s)
    if build.returncode != 0:
        raise RuntimeError(f"colcon build failed:\n{build.stdout}\n{build.stderr}")
    return install_env(workspace, env)


def install_env(workspace: Path, env: dict[str, str]) -> dict[str, str]:
    """Return ``env`` after sourcing the workspace's install/setup.bash."""
    sourced = subprocess.run(["bash", "-c", "source install/setup.bash && env -0"],
                             cwd=workspace, env=env, capture_output=True, timeout=60,
                             check=True)
    pairs = (item.split("=", 1) for item in sourced.stdout.decode().split("\0") if "=" in item)
    return dict(pairs)


@dataclass
class NodeProcess:
    """The installed node running as a subprocess, its output going to files.

    A pipe nobody reads could fill up and stall the node.
    """

    args: list[str]
    env: dict[str, str]
    log_dir: Path
    popen: subprocess.Popen = field(init=False)

    def __post_init__(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._out = open(self.log_dir / "stdout.txt", "wb")
        self._err = open(self.log_dir / "stderr.txt", "wb")
        self.popen = subprocess.Popen(self.args, env=self.env, stdout=self._out,
                                      stderr=self._err)

    def output(self) -> str:
        """Everything the node printed so far (the child writes to the files directly)."""
        return ((self.log_dir / "stdout.txt").read_text(errors="replace")
                + (self.log_dir / "stderr.txt").read_text(errors="replace"))

    def error_lines(self) -> list[str]:
        """Return the lines of its output that say ``error:``: a fault must give exactly one."""
        return [line for line in self.output().splitlines() if "error:" in line]

    def assert_running(self) -> None:
        assert self.popen.poll() is None, \
            f"node exited with {self.popen.returncode}:\n{self.output()}"

    def wait(self, timeout_s: float) -> Optional[int]:
        try:
            return self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig: int = signal.SIGINT, timeout_s: float = 5.0) -> tuple[Optional[int], float]:
        """Send ``sig``; (exit code or None if still running after timeout_s, seconds taken).

        A process that does not stop is killed so no test leaves one behind.
        """
        started = time.monotonic()
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        rc = self.wait(timeout_s)
        elapsed = time.monotonic() - started
        if rc is None:
            self.popen.kill()
            self.popen.wait(5.0)
        self._out.close()
        self._err.close()
        return rc, elapsed

    def stop_cleanly(self, sig: int = signal.SIGINT, timeout_s: float = 10.0) -> float:
        """Send ``sig``; assert the node exits 0 without a traceback; return how long it took."""
        rc, elapsed = self.stop(sig, timeout_s)
        output = self.output()
        assert rc == 0, output
        assert "Traceback" not in output, output
        return elapsed


# A colcon workspace's root and the environment of its install/setup.bash.
Workspace = tuple[Path, dict[str, str]]


def start_node(workspace: Workspace, log_dir: Path, ros_args: list[str],
               extra_env: Optional[dict[str, str]] = None) -> NodeProcess:
    """Start the installed node on this run's private domain, as ``ros2 run`` would.

    Its output and its compiled-model cache (``cache_dir``) go to ``log_dir``, so no test
    reads a cache another test wrote. ``extra_env`` adds variables to its environment.
    """
    root, env = workspace
    executable = root / "install" / PACKAGE / "lib" / PACKAGE / EXECUTABLE
    env = dict(env, **(extra_env or {}), ROS_DOMAIN_ID=str(private_domain_id()),
               PYTHONUNBUFFERED="1", RCUTILS_COLORIZED_OUTPUT="0")
    return NodeProcess([str(executable), "--ros-args", *ros_args,
                        "-p", f"cache_dir:={log_dir / 'ov_cache'}"], env, log_dir)


def stamp_key(header: Any) -> tuple[int, int]:
    return (int(header.stamp.sec), int(header.stamp.nanosec))


class Client:
    """A test node that publishes inputs, records outputs by stamp and sets parameters."""

    def __init__(self, name: str = "depth_test_client") -> None:
        self.context = Context()
        rclpy.init(context=self.context, domain_id=private_domain_id())
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.received: dict[str, dict[tuple[int, int], Any]] = {}

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

    def record(self, msg_type: type, topic: str, depth: int = 50) -> None:
        """Keep every message on ``topic`` by header stamp (reliable, as rviz2 subscribes)."""
        store = self.received.setdefault(topic, {})
        self.node.create_subscription(
            msg_type, topic, lambda msg: store.__setitem__(stamp_key(msg.header), msg),
            QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE))

    def publisher(self, msg_type: type, topic: str, reliable: bool, depth: int = 5):
        reliability = ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT
        return self.node.create_publisher(msg_type, topic,
                                          QoSProfile(depth=depth, reliability=reliability))

    def now(self):
        return self.node.get_clock().now().to_msg()

    def spin_until(self, done: Callable[[], bool], timeout_s: float,
                   tick: Optional[Callable[[], None]] = None, period_s: float = 0.05) -> bool:
        """Spin (calling ``tick`` every ``period_s``) until ``done()`` or the timeout."""
        deadline = time.monotonic() + timeout_s
        next_tick = 0.0
        while time.monotonic() < deadline:
            if tick is not None and time.monotonic() >= next_tick:
                tick()
                next_tick = time.monotonic() + period_s
            self.executor.spin_once(timeout_sec=0.01)
            if done():
                return True
        return done()

    def set_parameters(self, node_name: str, timeout_s: float = 10.0,
                       **values: Any) -> list[SetParametersResult]:
        client = self.node.create_client(SetParameters, f"{node_name}/set_parameters")
        try:
            if not client.wait_for_service(timeout_sec=timeout_s):
                raise TimeoutError(f"{node_name}/set_parameters is not available")
            request = SetParameters.Request(parameters=[
                ParameterMsg(name=k, value=Parameter(k, value=v).get_parameter_value())
                for k, v in values.items()])
            future = client.call_async(request)
            if not self.spin_until(future.done, timeout_s):
                raise TimeoutError(f"{node_name}/set_parameters did not answer")
            return list(future.result().results)
        finally:
            self.node.destroy_client(client)

    def get_parameters(self, node_name: str, *names: str, timeout_s: float = 10.0) -> list[Any]:
        """Values of ``names`` as the node's get_parameters service reports them."""
        client = self.node.create_client(GetParameters, f"{node_name}/get_parameters")
        try:
            if not client.wait_for_service(timeout_sec=timeout_s):
                raise TimeoutError(f"{node_name}/get_parameters is not available")
            future = client.call_async(GetParameters.Request(names=list(names)))
            if not self.spin_until(future.done, timeout_s):
                raise TimeoutError(f"{node_name}/get_parameters did not answer")
            return [Parameter.from_parameter_msg(ParameterMsg(name=n, value=v)).value
                    for n, v in zip(names, future.result().values)]
        finally:
            self.node.destroy_client(client)


def image_array(msg: Image) -> np.ndarray:
    """(H, W) float32 for 32FC1, (H, W, 3) uint8 for bgr8 (packed rows only)."""
    channels, dtype = {"32FC1": (1, np.float32), "bgr8": (3, np.uint8)}[msg.encoding]
    assert msg.step == msg.width * channels * np.dtype(dtype).itemsize
    assert not msg.is_bigendian
    data = np.frombuffer(bytes(msg.data), dtype=dtype)
    shape = (msg.height, msg.width) if channels == 1 else (msg.height, msg.width, channels)
    return data.reshape(shape)


def cloud_arrays(msg: PointCloud2) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """(h, w, 3) float32 xyz and (h, w, 3) uint8 RGB (None without an rgb field).

    Both are located through the message's own field table.
    """
    assert not msg.is_bigendian
    offsets = {f.name: f.offset for f in msg.fields}
    raw = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, msg.point_step)
    xyz = np.stack([raw[..., offsets[a]:offsets[a] + 4].copy().view("<f4")[..., 0]
                    for a in "xyz"], axis=-1)
    if "rgb" not in offsets:
        return xyz, None
    packed = raw[..., offsets["rgb"]:offsets["rgb"] + 4].copy().view("<u4")[..., 0]
    rgb = np.stack([(packed >> 16) & 0xFF, (packed >> 8) & 0xFF, packed & 0xFF], axis=-1)
    return xyz, rgb.astype(np.uint8)


def node_in_process(client: Client, namespace: str, engine_factory: Any = None,
                    **params: Any) -> Any:
    """Return a DepthNode in ``client``'s context and executor, configured and active.

    No colcon build, no subprocess: ``client.spin_until`` spins the node too, while its
    runner's threads infer. ``engine_factory`` replaces the OpenVINO engine the node
    builds from its parameters (the node's default when None).
    """
    from lifecycle_msgs.msg import State

    from depth_anything_ros.ros.node import default_engine, DepthNode

    node = DepthNode(engine_factory or default_engine, context=client.context,
                     namespace=namespace,
                     parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    client.executor.add_node(node)
    node.trigger_configure()
    node.trigger_activate()
    assert node._state_machine.current_state[0] == State.PRIMARY_STATE_ACTIVE, \
        node.configure_error
    return node
