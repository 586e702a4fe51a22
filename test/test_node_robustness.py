"""The installed node under faults.

Start-up errors, refused parameter updates, signals under full load, and two instances side
by side.

Every start-up fault must end the process with exit code 1 and exactly one line saying
what to fix, never a traceback. The fault processes are all started at once (each is
mostly Python start-up) and then checked one by one.
"""

from __future__ import annotations

from pathlib import Path
import signal
import time

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from ros_camera import Camera, TIMEOUT_S
from ros_diagnostics import DiagnosticsReader, status_name
from ros_harness import Client, image_array, NodeProcess, stamp_key
from scenes import noise_scene

LEFT, RIGHT = "/robust_left", "/robust_right"
NODE = "depth_anything"
OUTPUTS = (("depth/image", Image), ("depth/camera_info", CameraInfo),
           ("depth/colorized", Image), ("depth/points", PointCloud2))
SHUTDOWN_LIMIT_S = 2.0


def _assert_one_error_line(proc: NodeProcess, rc, words: tuple[str, ...]) -> None:
    output = proc.output()
    assert rc == 1, output
    assert "Traceback" not in output, output
    errors = proc.error_lines()
    assert len(errors) == 1, output
    for word in words:
        assert word in errors[0], (word, errors[0])


# --- start-up faults --------------------------------------------------------------------

def _ir_without_metadata(path: Path) -> Path:
    x = ops.parameter([1, 3, 14, 14], np.float32)
    ov.save_model(ov.Model([ops.result(ops.relu(x))], [x], "plain"), path)
    return path


@pytest.fixture(scope="module")
def fault_files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fault_files")
    files = {"missing": root / "missing" / "model.xml",
             "not_xml": root / "not_xml" / "model.xml",
             "other_xml": root / "other_xml" / "model.xml",
             "onnx": root / "model.onnx",
             "no_metadata": root / "no_metadata" / "model.xml",
             "missing_yaml": root / "missing.yaml",
             "broken_yaml": root / "broken.yaml"}
    for key in ("not_xml", "other_xml", "no_metadata"):
        files[key].parent.mkdir()
    files["not_xml"].write_bytes(b"\x00\x01 not a model")
    files["other_xml"].write_text("<package><name>x</name></package>")
    for key in ("not_xml", "other_xml"):
        files[key].with_suffix(".bin").write_bytes(b"")
    files["onnx"].write_bytes(b"onnx")
    _ir_without_metadata(files["no_metadata"])
    files["broken_yaml"].write_text("/**/depth_anything:\n  ros__parameters: [1, 2\n")
    return files


# name -> (ROS arguments given fault_files and the good model, words the error line must hold)
FAULTS = {
    "model missing": (lambda f, m: ["-p", f"model_path:={f['missing']}"],
                      ("does not exist", "depth_anything_export")),
    "not XML": (lambda f, m: ["-p", f"model_path:={f['not_xml']}"],
                ("as an OpenVINO IR", "not XML", "depth_anything_export")),
    "XML but not an IR": (lambda f, m: ["-p", f"model_path:={f['other_xml']}"],
                          ("as an OpenVINO IR", "root element <package>")),
    "not .xml": (lambda f, m: ["-p", f"model_path:={f['onnx']}"],
                 ("is not an OpenVINO IR (.xml)", "depth_anything_export")),
    "IR without metadata": (lambda f, m: ["-p", f"model_path:={f['no_metadata']}"],
                            ("no 'depth_anything' metadata", "encoder, depth_type, max_depth, "
                             "input_height, input_width")),
    "device absent": (lambda f, m: ["-p", f"model_path:={m}", "-p", "device:=FPGA"],
                      ("device 'FPGA' is not available", "OpenVINO sees CPU",
                       "allow_cpu_fallback")),
    "params file missing": (lambda f, m: ["--params-file", str(f["missing_yaml"])],
                            ("Couldn't parse params file", "missing.yaml", "existing, valid YAML")),
    "params file broken": (lambda f, m: ["--params-file", str(f["broken_yaml"])],
                           ("Couldn't parse params file", "broken.yaml", "valid YAML")),
    "unknown ROS argument": (lambda f, m: ["--no-such-flag"],
                             ("unknown ROS arguments", "--no-such-flag")),
    "parameter syntax": (lambda f, m: ["-p", "cloud_stride"],
                         ("Couldn't parse parameter override", "-p name:=value")),
    "parameter out of range": (lambda f, m: ["-p", f"model_path:={m}", "-p", "max_pixels:=0"],
                               ("parameter 'max_pixels'", "[1, 268435456]")),
    "parameter type": (lambda f, m: ["-p", f"model_path:={m}", "-p", "fallback_hfov_deg:=60"],
                       ("parameter 'fallback_hfov_deg'", "floating-point")),
    "parameter choice": (lambda f, m: ["-p", f"model_path:={m}", "-p", "colormap:=rainbow"],
                         ("parameter 'colormap'", "'turbo'")),
    "parameters contradict": (lambda f, m: ["-p", f"model_path:={m}",
                                            "-p", "colorize_max_depth:=0.2"],
                              ("colorize_max_depth", "must exceed colorize_min_depth")),
}


@pytest.fixture(scope="module")
def fault_runs(launch_node, fault_files, small_metric_ir):
    """Every fault's process, started together."""
    runs = {}
    for index, (name, (ros_args, _)) in enumerate(FAULTS.items()):
        runs[name] = launch_node(f"fault{index}", [
            "-r", f"__ns:=/fault{index}", *ros_args(fault_files, small_metric_ir)])
    yield runs
    for proc in runs.values():
        proc.stop(signal.SIGKILL, 5.0)


@pytest.mark.parametrize("name", FAULTS)
def test_start_up_fault_exits_1_with_one_actionable_line(fault_runs, name):
    proc = fault_runs[name]
    rc = proc.wait(TIMEOUT_S)
    _assert_one_error_line(proc, rc, FAULTS[name][1])


def test_a_model_the_device_cannot_compile_stops_the_node_at_the_first_frame(
        launch_node, small_metric_ir):
    # MULTI passes the device check but cannot compile without a priority list: what a
    # misconfigured AUTO:/HETERO:/MULTI: string or an unsupported layer looks like.
    proc = launch_node("multi", [
        "-r", "__ns:=/robust_multi", "-p", f"model_path:={small_metric_ir}",
        "-p", "device:=MULTI"])
    client = Client("robust_multi_client")
    try:
        camera = _camera(client, "/robust_multi", 80, 60)
        client.node.create_subscription(Image, "/robust_multi/depth/image", lambda m: None, 1)
        exited = client.spin_until(lambda: proc.popen.poll() is not None, TIMEOUT_S,
                                   tick=camera.publish, period_s=0.1)
        assert exited, proc.output()
        _assert_one_error_line(proc, proc.popen.returncode,
                               ("cannot compile", "MULTI", "KEY_MULTI_DEVICE_PRIORITIES"))
    finally:
        proc.stop(signal.SIGKILL, 5.0)
        client.close()


# --- running nodes ----------------------------------------------------------------------

def _camera(client: Client, namespace: str, width: int, height: int, seed: int = 0) -> Camera:
    """Return a camera of its own scene, calibration and frame_id."""
    k = (0.9 * width, 0.0, width / 2, 0.0, 0.9 * width, height / 2, 0.0, 0.0, 1.0)
    return Camera(client, namespace, noise_scene(seed, height, width), k,
                  frame_id=f"{namespace.strip('/')}_optical_frame")


class Outputs:
    """Counts every output of one namespace and keeps only the newest depth image.

    That way a long run at full resolution does not pile up clouds in the test process.
    """

    def __init__(self, client: Client, namespace: str) -> None:
        self.count = {topic: 0 for topic, _ in OUTPUTS}
        self.frame_ids: set[str] = set()
        self.stamps: set[tuple[int, int]] = set()
        self.last_depth: Image | None = None
        for topic, msg_type in OUTPUTS:
            client.node.create_subscription(
                msg_type, f"{namespace}/{topic}",
                lambda msg, topic=topic: self._got(topic, msg), 5)

    def _got(self, topic: str, msg) -> None:
        self.count[topic] += 1
        self.frame_ids.add(msg.header.frame_id)
        self.stamps.add(stamp_key(msg.header))
        if topic == "depth/image":
            self.last_depth = msg

    def all_flowing(self, at_least: int = 1) -> bool:
        return min(self.count.values()) >= at_least


@pytest.fixture(scope="module")
def side_by_side(launch_node, small_metric_ir):
    """Two instances of the same node on two cameras.

    The left one asked for a device that is absent, with allow_cpu_fallback, so it also
    shows the fallback.
    """
    left = launch_node("left", [
        "-r", f"__ns:={LEFT}", "-p", f"model_path:={small_metric_ir}",
        "-p", "device:=FPGA", "-p", "allow_cpu_fallback:=true"])
    right = launch_node("right", [
        "-r", f"__ns:={RIGHT}", "-p", f"model_path:={small_metric_ir}",
        "-p", "colour_map:=gray"])  # misspelt: must be named in the log, not silently dropped
    client = Client("robust_client")
    yield left, right, client, DiagnosticsReader(client)
    for proc in (left, right):
        proc.stop(signal.SIGKILL, 5.0)
    client.close()


def test_two_instances_in_separate_namespaces_each_answer_only_their_camera(
        side_by_side, small_metric_ir, reference_engine):
    left, right, client, diagnostics = side_by_side
    cameras = {LEFT: _camera(client, LEFT, 80, 60, seed=1),
               RIGHT: _camera(client, RIGHT, 80, 60, seed=2)}
    outputs = {ns: Outputs(client, ns) for ns in cameras}

    def tick() -> None:
        for camera in cameras.values():
            camera.publish()

    assert client.spin_until(lambda: all(o.all_flowing(3) for o in outputs.values()),
                             TIMEOUT_S, tick=tick), {ns: o.count for ns, o in outputs.items()}
    left.assert_running()
    right.assert_running()
    engine = reference_engine(small_metric_ir, "")   # the device's default, as the nodes run
    depth = {}
    for ns, camera in cameras.items():
        out = outputs[ns]
        assert out.frame_ids == {camera.frame_id}
        assert out.stamps <= set(camera.sent)
        depth[ns] = image_array(out.last_depth)
        expected = engine.infer(camera.pixels, "bgr")
        np.testing.assert_allclose(depth[ns], expected, rtol=1e-3, atol=1e-3)
    assert np.abs(depth[LEFT] - depth[RIGHT]).max() > 1e-2  # different scenes, no cross-talk
    assert "allow_cpu_fallback" in left.output() and "'FPGA' is not available" in left.output()
    assert ("ignoring unknown parameter(s) 'colour_map' (did you mean 'colormap'?)"
            in right.output())
    # Each instance reports under its own name (the default period is 1 s).
    expected_names = {status_name(LEFT), status_name(RIGHT)}
    assert client.spin_until(lambda: expected_names <= diagnostics.names(), TIMEOUT_S), (
        diagnostics.names())
    hardware = {s.hardware_id for name in diagnostics.names() if name.startswith(LEFT.strip("/"))
                for s in diagnostics.statuses(name)}
    assert hardware == {"CPU"}


def test_invalid_parameter_updates_are_refused_with_the_reason(side_by_side):
    _, _, client, _ = side_by_side
    node = f"{RIGHT}/{NODE}"
    refused = {
        "cloud_stride": ("three", "type"),
        "colormap": ("rainbow", "'turbo'"),
        "colorize_max_depth": (0.1, "must exceed colorize_min_depth"),
        "cloud_max_range": (2000.0, "out of range"),
        "device": ("GPU", "read-only"),
    }
    before = client.get_parameters(node, *refused)
    for name, (value, words) in refused.items():
        [result] = client.set_parameters(node, **{name: value})
        assert not result.successful, name
        assert words in result.reason, (name, result.reason)
    assert client.get_parameters(node, *refused) == before
    # The node still takes a valid update after the refusals.
    [result] = client.set_parameters(node, colormap="gray")
    assert result.successful, result.reason
    assert client.get_parameters(node, "colormap") == ["gray"]


def _stop_under_load(proc: NodeProcess, client: Client, cameras: list[Camera],
                     outputs: list[Outputs], sig: int) -> float:
    """Run every camera at 30 Hz with all outputs subscribed until frames flow.

    Send ``sig`` while the load goes on, and return how long the node took to exit.
    """
    def tick() -> None:
        for camera in cameras:
            camera.publish()

    start = {id(o): dict(o.count) for o in outputs}
    flowing = client.spin_until(
        lambda: all(min(o.count[t] - start[id(o)][t] for t, _ in OUTPUTS) >= 5 for o in outputs),
        TIMEOUT_S, tick=tick, period_s=1 / 30)
    assert flowing, [o.count for o in outputs]
    proc.assert_running()
    sent = time.monotonic()
    proc.popen.send_signal(sig)
    exited = client.spin_until(lambda: proc.popen.poll() is not None, 10.0, tick=tick,
                               period_s=1 / 30)
    elapsed = time.monotonic() - sent
    assert exited, proc.output()
    return elapsed


def test_sigterm_and_sigint_under_full_load_exit_within_2_s(side_by_side):
    left, right, client, _ = side_by_side
    # VGA, 30 Hz, all four outputs (full-resolution coloured clouds) subscribed.
    cameras = [_camera(client, LEFT, 640, 480, seed=3), _camera(client, RIGHT, 640, 480, seed=4)]
    outputs = [Outputs(client, LEFT), Outputs(client, RIGHT)]

    elapsed = _stop_under_load(left, client, cameras, outputs, signal.SIGTERM)
    left.stop_cleanly()
    assert elapsed < SHUTDOWN_LIMIT_S, (elapsed, left.output())
    # The other instance carried on, and stops as cleanly on Ctrl-C.
    elapsed = _stop_under_load(right, client, cameras[1:], outputs[1:], signal.SIGINT)
    right.stop_cleanly()
    assert elapsed < SHUTDOWN_LIMIT_S, (elapsed, right.output())
    for out in outputs:
        assert out.count["depth/points"] > 0
