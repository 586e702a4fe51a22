"""The installed depth_anything_node against a real ROS graph.

The package is built once with colcon into a temporary workspace; each node process is
the installed console script, started with ``--ros-args`` on a ROS domain private to
this test run. A test node publishes a synthetic camera (Image + CameraInfo) and checks
what comes back: headers, encodings, sizes, CameraInfo scaling, the cloud's geometry and
colours, diagnostics, relative-model behaviour, runtime parameters and clean exits.
"""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from depth_anything_ros.geometry.intrinsics import Intrinsics
from depth_anything_ros.pipeline.messages.image_input import REJECT_DATA_LENGTH, REJECT_ENCODING
from depth_anything_ros.pipeline.notes import REJECT_CAMERA_INFO_INVALID
from depth_anything_ros.ros import diagnostics as diag
from ros_camera import (Camera, CAMERA_K, complete_stamp, FRAME_ID, HEIGHT, SCENE, TIMEOUT_S,
                        wait_for_outputs, WIDTH)
from ros_diagnostics import DiagnosticsReader, status_name, values_of
from ros_harness import Client, cloud_arrays, image_array, stamp_key

METRIC_NS = "/metric"
RELATIVE_NS = "/relative"
# Float32 products computed in a different order: a few ulps.
RTOL = 1e-5


def expected_points(depth: np.ndarray, intr: Intrinsics, stride: int, min_range: float,
                    max_range: float) -> np.ndarray:
    """Return depth * ((u - cx)/fx, (v - cy)/fy, 1) at every stride-th pixel; NaN out of range."""
    vs, us = np.mgrid[0:depth.shape[0]:stride, 0:depth.shape[1]:stride].astype(np.float64)
    z = depth[::stride, ::stride].astype(np.float64)
    points = np.stack([z * (us - intr.cx) / intr.fx, z * (vs - intr.cy) / intr.fy, z], -1)
    points[~((z >= min_range) & (z <= max_range))] = np.nan
    return points


def intrinsics_of(info: CameraInfo) -> Intrinsics:
    k = info.k
    return Intrinsics(k[0], k[4], k[2], k[5], info.width, info.height)


# --- fixtures -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client():
    c = Client()
    for topic, msg_type in (("depth/image", Image), ("depth/camera_info", CameraInfo),
                            ("depth/colorized", Image), ("depth/points", PointCloud2),
                            ("depth/relative", Image)):
        for namespace in (METRIC_NS, RELATIVE_NS):
            c.record(msg_type, f"{namespace}/{topic}")
    yield c
    c.close()


@pytest.fixture(scope="module")
def diagnostics(client) -> DiagnosticsReader:
    return DiagnosticsReader(client)


@pytest.fixture(scope="module")
def metric_node(ros_workspace, launch_node, small_metric_ir):
    root, _ = ros_workspace
    params = root / "install" / "depth_anything_ros" / "share" / "depth_anything_ros" / "config"
    proc = launch_node("metric_node", [
        "-r", f"__ns:={METRIC_NS}", "--params-file", str(params / "depth.yaml"),
        "-p", f"model_path:={small_metric_ir}",
        # Clouds are compared point by point with the pinhole back-projection; the
        # flying-pixel filter, on by default, has its own tests.
        "-p", "flying_pixel_filter:=false"])
    yield proc
    proc.stop(signal.SIGKILL, 5.0)


@pytest.fixture(scope="module")
def relative_node(launch_node, small_relative_ir):
    proc = launch_node("relative_node", [
        "-r", f"__ns:={RELATIVE_NS}", "-p", f"model_path:={small_relative_ir}",
        "-p", "flying_pixel_filter:=false",
        "-p", "input_transport:=compressed"])
    yield proc
    proc.stop(signal.SIGKILL, 5.0)


@pytest.fixture(scope="module")
def network_size(small_metric_ir, reference_engine) -> tuple[int, int]:
    return reference_engine(small_metric_ir).network_size


# --- metric model -----------------------------------------------------------------------

METRIC_TOPICS = [f"{METRIC_NS}/depth/{t}" for t in ("image", "camera_info", "colorized", "points")]


def test_node_uses_its_dds_profile_and_default_peers_still_receive(metric_node, client):
    """The node sends through its own 32 MiB shared-memory segment (dds_profile.py).

    This test process keeps Fast DDS's defaults, as a user's rviz2 or Nav2 would.
    """
    camera = Camera(client, METRIC_NS)
    wait_for_outputs(client, camera, METRIC_TOPICS)
    assert "Fast DDS: using" in metric_node.output()
    assert "FASTDDS_DEFAULT_PROFILES_FILE" not in os.environ


def test_metric_outputs_share_the_input_header_and_have_the_right_formats(metric_node, client):
    camera = Camera(client, METRIC_NS)
    key = wait_for_outputs(client, camera, METRIC_TOPICS)
    metric_node.assert_running()
    depth_msg, info, colorized, cloud = (client.received[t][key] for t in METRIC_TOPICS)
    for msg in (depth_msg, info, colorized, cloud):
        assert stamp_key(msg.header) == key
        assert msg.header.frame_id == FRAME_ID
        assert (msg.height, msg.width) == (HEIGHT, WIDTH)
    assert depth_msg.encoding == "32FC1" and colorized.encoding == "bgr8"
    depth = image_array(depth_msg)
    # The metric test model ends in sigmoid * 20 m.
    assert np.all(np.isfinite(depth)) and depth.min() > 0.0 and depth.max() <= 20.0
    assert depth.std() > 0.0
    assert image_array(colorized).reshape(-1, 3).std(axis=0).max() > 0.0
    np.testing.assert_allclose(info.k, CAMERA_K)
    np.testing.assert_allclose(np.reshape(info.p, (3, 4))[:, :3], np.reshape(CAMERA_K, (3, 3)))
    assert cloud.point_step == 32 and not cloud.is_dense
    assert [f.name for f in cloud.fields] == ["x", "y", "z", "rgb"]


def test_cloud_is_depth_times_camera_rays_with_image_colours(metric_node, client):
    key = wait_for_outputs(client, Camera(client, METRIC_NS), METRIC_TOPICS)
    depth = image_array(client.received[f"{METRIC_NS}/depth/image"][key])
    intr = intrinsics_of(client.received[f"{METRIC_NS}/depth/camera_info"][key])
    xyz, rgb = cloud_arrays(client.received[f"{METRIC_NS}/depth/points"][key])
    # Defaults from config/depth.yaml: stride 1, range [0.1, 20] m.
    expected = expected_points(depth, intr, 1, 0.1, 20.0)
    np.testing.assert_allclose(xyz, expected, rtol=RTOL, atol=1e-6)
    np.testing.assert_array_equal(rgb, SCENE[..., ::-1])  # BGR image -> RGB fields


def test_best_effort_and_reliable_cameras_both_connect(metric_node, client):
    for reliable in (False, True):
        camera = Camera(client, METRIC_NS, reliable=reliable)
        assert client.spin_until(camera.connected, TIMEOUT_S)
        wait_for_outputs(client, camera, [f"{METRIC_NS}/depth/image"])
        camera.close()


def test_runtime_parameters_rescale_outputs_and_cut_the_cloud(metric_node, client,
                                                              network_size):
    node = f"{METRIC_NS}/depth_anything"
    [rejected] = client.set_parameters(node, cloud_stride=0)
    assert not rejected.successful and "cloud_stride" in rejected.reason
    [rejected] = client.set_parameters(node, model_path="/elsewhere/model.xml")
    assert not rejected.successful and "read-only" in rejected.reason

    camera = Camera(client, METRIC_NS)
    key = wait_for_outputs(client, camera, [f"{METRIC_NS}/depth/image"])
    cut = float(np.median(image_array(client.received[f"{METRIC_NS}/depth/image"][key])))
    results = client.set_parameters(node, output_resolution="network", cloud_stride=3,
                                    cloud_max_range=cut)
    assert all(r.successful for r in results), [r.reason for r in results]
    try:
        net_h, net_w = network_size
        camera.sent.clear()
        # Frames sent before the change may still be in flight: wait for a network-sized one.

        def network_sized() -> bool:
            key = complete_stamp(client, METRIC_TOPICS, camera.sent)
            return key is not None and client.received[METRIC_TOPICS[0]][key].width == net_w

        assert client.spin_until(network_sized, TIMEOUT_S, tick=camera.publish)
        key = complete_stamp(client, METRIC_TOPICS, camera.sent)
        depth_msg, info, colorized, cloud = (client.received[t][key] for t in METRIC_TOPICS)
        assert (depth_msg.height, depth_msg.width) == (net_h, net_w)
        assert (colorized.height, colorized.width) == (net_h, net_w)
        assert (info.height, info.width) == (net_h, net_w)
        sx, sy = net_w / WIDTH, net_h / HEIGHT
        fx, _, cx, _, fy, cy = CAMERA_K[:6]
        # Pixel centres: the image edge (-0.5) stays the edge when resizing.
        np.testing.assert_allclose(
            [info.k[0], info.k[4], info.k[2], info.k[5]],
            [fx * sx, fy * sy, (cx + 0.5) * sx - 0.5, (cy + 0.5) * sy - 0.5], rtol=1e-9)
        depth = image_array(depth_msg)
        xyz, rgb = cloud_arrays(cloud)
        assert (cloud.height, cloud.width) == (-(-net_h // 3), -(-net_w // 3))
        expected = expected_points(depth, intrinsics_of(info), 3, 0.1, cut)
        np.testing.assert_allclose(xyz, expected, rtol=RTOL, atol=1e-6)
        beyond = depth[::3, ::3] > cut
        assert beyond.any() and (~beyond).any()
        assert np.isnan(xyz[beyond]).all() and np.isfinite(xyz[~beyond]).all()
        assert rgb is not None and rgb.shape == xyz.shape
    finally:
        results = client.set_parameters(node, output_resolution="camera", cloud_stride=1,
                                        cloud_max_range=20.0)
        assert all(r.successful for r in results)


def test_bad_messages_are_counted_and_the_node_keeps_running(metric_node, client, diagnostics):
    camera = Camera(client, METRIC_NS)
    wait_for_outputs(client, camera, [f"{METRIC_NS}/depth/image"])
    truncated = Image(height=HEIGHT, width=WIDTH, encoding="bgr8", step=WIDTH * 3,
                      data=SCENE.tobytes()[:-7])
    uncalibrated = CameraInfo(height=HEIGHT, width=WIDTH)  # K all zero
    unknown_encoding = Image(height=HEIGHT, width=WIDTH, encoding="8UC7", step=WIDTH * 7,
                             data=bytes(HEIGHT * WIDTH * 7))
    bad = {REJECT_DATA_LENGTH: (truncated, None), REJECT_CAMERA_INFO_INVALID: (None, uncalibrated),
           REJECT_ENCODING: (unknown_encoding, None)}
    # Apart in time: the node's best-effort depth-1 subscription keeps only the newest.
    for image, info in bad.values():
        camera.publish(image, info)
        client.spin_until(lambda: False, 0.3)
    after = len(camera.sent)
    wait_for_outputs(client, camera, METRIC_TOPICS, after=after)

    def counted(values: dict[str, str]) -> bool:
        """Each message counted under its own reason."""
        return int(values[diag.KEY_REJECTED]) >= len(bad) and all(
            int(values[diag.rejected_key(kind)]) >= 1 for kind in bad)

    diagnostics.wait(status_name(METRIC_NS), counted, TIMEOUT_S, tick=camera.publish)
    metric_node.assert_running()
    assert "ignoring image" in metric_node.output()


def test_diagnostics_report_rates_latencies_and_drops(metric_node, client, diagnostics):
    camera = Camera(client, METRIC_NS)
    wait_for_outputs(client, camera, [f"{METRIC_NS}/depth/image"])
    # A burst far faster than inference (tens of ms per frame) must drop frames.
    for _ in range(60):
        camera.publish()
        client.executor.spin_once(timeout_sec=0.002)
    name = status_name(METRIC_NS)
    diagnostics.wait(name, lambda values: int(values[diag.KEY_DROPPED]) > 0, TIMEOUT_S,
                     tick=camera.publish)
    # One more full period of steady 20 Hz input.
    seen = diagnostics.count(name)
    assert client.spin_until(lambda: diagnostics.count(name) >= seen + 2, TIMEOUT_S,
                             tick=camera.publish)
    status = diagnostics.latest(name)
    values = values_of(status)
    assert status.hardware_id == "CPU"
    assert float(values[diag.KEY_INPUT_HZ]) > 2.0
    assert float(values[diag.KEY_OUTPUT_HZ]) > 2.0
    assert int(values[diag.KEY_PUBLISHED]) > 0
    assert int(values[diag.KEY_RECEIVED]) >= int(values[diag.KEY_PUBLISHED]) + int(
        values[diag.KEY_DROPPED])
    assert 0.0 < float(values[diag.KEY_INFERENCE_MEAN]) <= float(values[diag.KEY_INFERENCE_MAX])
    # End to end includes inference, and stamps come from this machine's clock.
    assert float(values[diag.KEY_INFERENCE_MEAN]) <= float(values[diag.KEY_E2E_MEAN]) < 5000.0
    assert values["model type"] == "metric"
    assert values["calibration"].startswith("camera_info")


def test_sigint_stops_the_node_cleanly(metric_node, client):
    metric_node.assert_running()
    # Stop it busy: frames keep arriving until the signal, so inference is likely running.
    camera = Camera(client, METRIC_NS)
    wait_for_outputs(client, camera, [f"{METRIC_NS}/depth/image"])
    elapsed = metric_node.stop_cleanly(signal.SIGINT)
    assert elapsed < 2.0, metric_node.output()


# --- relative model ---------------------------------------------------------------------

def test_relative_model_publishes_relative_depth_and_no_metric_outputs(relative_node, client):
    camera = Camera(client, RELATIVE_NS, compressed=True, camera_info=False)
    topics = [f"{RELATIVE_NS}/depth/{t}" for t in ("relative", "colorized", "camera_info")]
    key = wait_for_outputs(client, camera, topics)
    # A few more frames: metric outputs, if any, would have arrived by now.
    wait_for_outputs(client, camera, topics, after=len(camera.sent))
    relative_node.assert_running()
    relative_msg, colorized, info = (client.received[t][key] for t in topics)
    for msg in (relative_msg, colorized, info):
        assert stamp_key(msg.header) == key and msg.header.frame_id == FRAME_ID
        assert (msg.height, msg.width) == (HEIGHT, WIDTH)
    relative = image_array(relative_msg)
    assert relative_msg.encoding == "32FC1" and np.all(np.isfinite(relative))
    assert relative.min() >= 0.0 and relative.std() > 0.0  # ReLU output, not constant
    assert colorized.encoding == "bgr8"
    assert not client.received[f"{RELATIVE_NS}/depth/image"]
    assert not client.received[f"{RELATIVE_NS}/depth/points"]
    # No CameraInfo was published: 60 degree horizontal FOV fallback.
    expected = Intrinsics.from_fov(WIDTH, HEIGHT, 60.0)
    np.testing.assert_allclose([info.k[0], info.k[4], info.k[2], info.k[5]],
                               [expected.fx, expected.fy, expected.cx, expected.cy], rtol=1e-9)
    assert "CameraInfo" in relative_node.output()


def test_relative_scale_enables_metric_depth(relative_node, client):
    results = client.set_parameters(f"{RELATIVE_NS}/depth_anything", relative_scale=0.5,
                                    relative_shift=0.1)
    assert all(r.successful for r in results), [r.reason for r in results]
    camera = Camera(client, RELATIVE_NS, compressed=True, camera_info=False)
    topics = [f"{RELATIVE_NS}/depth/{t}" for t in ("relative", "image", "points")]
    key = wait_for_outputs(client, camera, topics)
    relative = image_array(client.received[topics[0]][key])
    depth = image_array(client.received[topics[1]][key])
    np.testing.assert_allclose(depth, 1.0 / (0.5 * relative.astype(np.float64) + 0.1),
                               rtol=RTOL)
    xyz, _ = cloud_arrays(client.received[topics[2]][key])
    expected = expected_points(depth, Intrinsics.from_fov(WIDTH, HEIGHT, 60.0), 1, 0.1, 20.0)
    np.testing.assert_allclose(xyz, expected, rtol=RTOL, atol=1e-6)


def test_sigterm_stops_the_node_cleanly(relative_node, client):
    relative_node.assert_running()
    camera = Camera(client, RELATIVE_NS, compressed=True, camera_info=False)
    wait_for_outputs(client, camera, [f"{RELATIVE_NS}/depth/relative"])
    elapsed = relative_node.stop_cleanly(signal.SIGTERM)
    assert elapsed < 2.0, relative_node.output()


# --- start-up failures ------------------------------------------------------------------

@pytest.mark.parametrize("ros_args, words", [
    (["-p", "model_path:=/nonexistent/depth_model.xml"], "/nonexistent/depth_model.xml"),
    (["-p", "model_path:=/nonexistent/depth_model.xml", "-p", "cloud_stride:=99"],
     "parameter 'cloud_stride'"),
])
def test_start_up_errors_exit_1_with_one_clear_line(launch_node, ros_args, words):
    proc = launch_node("failing_node", ["-r", "__ns:=/failing", *ros_args])
    rc = proc.wait(30.0)
    proc.stop(signal.SIGKILL)
    output = proc.output()
    assert rc == 1, output
    assert "Traceback" not in output
    errors = proc.error_lines()
    assert len(errors) == 1 and words in errors[0], output


# --- several inference workers ----------------------------------------------------------

def test_two_inference_workers_publish_in_order_and_account_for_every_frame(
        launch_node, small_metric_ir, client, diagnostics):
    namespace = "/workers"
    topic = f"{namespace}/depth/image"
    client.record(Image, topic, depth=100)
    proc = launch_node("workers_node", [
        "-r", f"__ns:={namespace}", "-p", f"model_path:={small_metric_ir}",
        "-p", "performance_hint:=THROUGHPUT", "-p", "inference_workers:=2"])
    try:
        camera = Camera(client, namespace)
        wait_for_outputs(client, camera, [topic])
        # Frames every 10 ms keep both workers busy, so they finish out of turn at times.
        first = len(camera.sent)
        assert client.spin_until(lambda: len(camera.sent) - first >= 150, TIMEOUT_S,
                                 tick=camera.publish, period_s=0.01)

        def counted(values: dict[str, str]) -> int:
            return sum(int(values[key]) for key in (diag.KEY_PUBLISHED, diag.KEY_DROPPED,
                                                    diag.KEY_SKIPPED, diag.KEY_FAILED))

        # The input has stopped: every frame received must come to one of those ends.
        values = diagnostics.wait(status_name(namespace),
                                  lambda v: int(v[diag.KEY_RECEIVED]) == counted(v), TIMEOUT_S)
        arrived = list(client.received[topic])
        assert arrived == sorted(arrived), "outputs went back in time"
        assert len(arrived) >= 10
        assert "2 inference lane(s)" in proc.output()
        assert int(values[diag.KEY_FAILED]) == 0
        proc.assert_running()
    finally:
        proc.stop(signal.SIGKILL, 5.0)
