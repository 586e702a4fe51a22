"""The installed node as a managed node, with lazy input and QoS overrides, over real rclpy.

Driven the way nav2_lifecycle_manager or ``ros2 lifecycle set`` drive a node: through
its change_state/get_state services. Checked from outside: which outputs arrive in
which state, whether the node subscribes to the camera at all, the QoS the graph
reports for its endpoints, and its thread count under subscriber churn.
"""

from __future__ import annotations

import signal
import time

from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
import psutil
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, PointCloud2
import yaml

from depth_anything_ros.ros import diagnostics as diag
from depth_anything_ros.ros.compat import FORCE_FALLBACKS_ENV
from ros_camera import Camera, TIMEOUT_S, wait_for_outputs
from ros_diagnostics import DiagnosticsReader, status_name
from ros_harness import Client

NODE = "/lifecycle/depth_anything"
# Long enough that frames sent to a node which would answer them (tens of ms per frame
# here) certainly would have been answered.
QUIET_S = 3.0


def call(client: Client, srv_type: type, name: str, request, timeout_s: float = TIMEOUT_S):
    handle = client.node.create_client(srv_type, name)
    try:
        assert handle.wait_for_service(timeout_sec=timeout_s), f"{name} is not available"
        future = handle.call_async(request)
        assert client.spin_until(future.done, timeout_s), f"{name} did not answer"
        return future.result()
    finally:
        client.node.destroy_client(handle)


def state(client: Client) -> int:
    return call(client, GetState, f"{NODE}/get_state", GetState.Request()).current_state.id


def transition(client: Client, transition_id: int) -> bool:
    request = ChangeState.Request(transition=Transition(id=transition_id))
    return call(client, ChangeState, f"{NODE}/change_state", request).success


@pytest.fixture
def client():
    c = Client(name="lifecycle_test_client")
    yield c
    c.close()


def quiet(client: Client, camera: Camera, topic: str) -> bool:
    """Publish frames for QUIET_S; True when none of them came back on ``topic``."""
    before = len(camera.sent)
    client.spin_until(lambda: False, QUIET_S, tick=camera.publish, period_s=0.1)
    answered = set(client.received.get(topic, {})) & set(camera.sent[before:])
    return not answered


def test_lifecycle_transitions_through_the_services(launch_node, client, small_metric_ir,
                                                    small_relative_ir):
    proc = launch_node("lifecycle_node", [
        "-r", "__ns:=/lifecycle", "-p", "autostart:=false",
        "-p", "model_path:=/nonexistent/lifecycle_model.xml"])
    try:
        for topic in ("/lifecycle/depth/image", "/lifecycle/depth/relative"):
            client.record(Image, topic)
        camera = Camera(client, "/lifecycle")
        assert state(client) == State.PRIMARY_STATE_UNCONFIGURED

        # A missing model: configure fails with the reason, the node stays up, unconfigured.
        assert not transition(client, Transition.TRANSITION_CONFIGURE)
        assert state(client) == State.PRIMARY_STATE_UNCONFIGURED
        proc.assert_running()
        errors = proc.error_lines()
        assert len(errors) == 1 and "/nonexistent/lifecycle_model.xml" in errors[0], errors

        # Reload parameters may change while unconfigured and apply at the next configure.
        [ok] = client.set_parameters(NODE, model_path=str(small_metric_ir))
        assert ok.successful, ok.reason
        assert transition(client, Transition.TRANSITION_CONFIGURE)
        assert state(client) == State.PRIMARY_STATE_INACTIVE
        [refused] = client.set_parameters(NODE, model_path=str(small_relative_ir))
        assert not refused.successful and "unconfigured" in refused.reason
        assert quiet(client, camera, "/lifecycle/depth/image"), "inactive node published"

        assert transition(client, Transition.TRANSITION_ACTIVATE)
        assert state(client) == State.PRIMARY_STATE_ACTIVE
        wait_for_outputs(client, camera, ["/lifecycle/depth/image"])

        assert transition(client, Transition.TRANSITION_DEACTIVATE)
        assert state(client) == State.PRIMARY_STATE_INACTIVE
        assert quiet(client, camera, "/lifecycle/depth/image"), "deactivated node published"

        assert transition(client, Transition.TRANSITION_CLEANUP)
        assert state(client) == State.PRIMARY_STATE_UNCONFIGURED
        # Re-pointed at another model without a restart: the relative one answers on
        # depth/relative, which the metric model does not publish.
        [ok] = client.set_parameters(NODE, model_path=str(small_relative_ir))
        assert ok.successful, ok.reason
        assert transition(client, Transition.TRANSITION_CONFIGURE)
        assert transition(client, Transition.TRANSITION_ACTIVATE)
        wait_for_outputs(client, camera, ["/lifecycle/depth/relative"])
        assert "relative model" in proc.output()

        assert transition(client, Transition.TRANSITION_DEACTIVATE)
        assert transition(client, Transition.TRANSITION_CLEANUP)
        assert transition(client, Transition.TRANSITION_UNCONFIGURED_SHUTDOWN)
        assert state(client) == State.PRIMARY_STATE_FINALIZED
        proc.assert_running()
        proc.stop_cleanly(signal.SIGINT)
    finally:
        proc.stop(signal.SIGKILL, 5.0)


@pytest.mark.parametrize("trigger", ["matched_events", "polling"])
def test_input_is_subscribed_only_while_an_output_is_watched(launch_node, client,
                                                             small_metric_ir, trigger):
    """Lazy input, driven by publisher matched events or, as on Humble, by polling alone."""
    polling = trigger == "polling"
    proc = launch_node("lazy_node", [
        "-r", "__ns:=/lazy", "-p", f"model_path:={small_metric_ir}",
        "-p", "diagnostics_period:=0.5"],
        extra_env={FORCE_FALLBACKS_ENV: "1"} if polling else None)
    try:
        diagnostics = DiagnosticsReader(client)
        status = status_name("/lazy")
        camera = Camera(client, "/lazy", reliable=False)
        # Nobody watches: diagnostics keep coming, and no frame is ever received.
        diagnostics.wait(status, timeout_s=TIMEOUT_S, tick=camera.publish, period_s=0.1)
        # The node says which trigger it uses: the fallback really runs here.
        assert ("polls the subscriber counts" in proc.output()) == polling, proc.output()
        client.spin_until(lambda: False, QUIET_S, tick=camera.publish, period_s=0.1)
        assert diagnostics.values(status)[diag.KEY_RECEIVED] == "0"
        assert client.node.count_subscribers("/lazy/image") == 0

        # A subscriber appearing gets outputs within 5 s.
        started = time.monotonic()
        client.record(Image, "/lazy/depth/image")
        wait_for_outputs(client, camera, ["/lazy/depth/image"], timeout_s=5.0,
                         after=len(camera.sent))
        assert time.monotonic() - started < 5.0

        # Subscribers coming and going during inference: no crash, no thread leak.
        node_process = psutil.Process(proc.popen.pid)
        threads_before = node_process.num_threads()
        qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        for cycle in range(200):
            sub = client.node.create_subscription(PointCloud2, "/lazy/depth/points",
                                                  lambda _msg: None, qos)
            client.spin_until(lambda: False, 0.02, tick=camera.publish, period_s=0.01)
            client.node.destroy_subscription(sub)
            client.spin_until(lambda: False, 0.01)
        proc.assert_running()
        wait_for_outputs(client, camera, ["/lazy/depth/image"], after=len(camera.sent))
        threads_after = node_process.num_threads()
        assert threads_after <= threads_before + 2, (threads_before, threads_after)
        assert "Traceback" not in proc.output()

        # The last subscriber leaves: the node lets go of the camera again.
        for sub in list(client.node.subscriptions):
            if sub.topic_name == "/lazy/depth/image":
                client.node.destroy_subscription(sub)
        assert client.spin_until(lambda: client.node.count_subscribers("/lazy/image") == 0,
                                 10.0), "image subscription outlived its last watcher"
        proc.stop_cleanly(signal.SIGINT)
    finally:
        proc.stop(signal.SIGKILL, 5.0)


def test_qos_overrides_from_a_params_file(launch_node, tmp_path, client, small_metric_ir):
    params = tmp_path / "qos.yaml"
    params.write_text(yaml.safe_dump({"/**/depth_anything": {"ros__parameters": {
        "model_path": str(small_metric_ir),
        "qos_overrides": {
            "/qos/depth/points": {"publisher": {"reliability": "best_effort"}},
            "/qos/image": {"subscription": {"reliability": "reliable", "depth": 3}},
        }}}}))
    proc = launch_node("qos_node", ["-r", "__ns:=/qos", "--params-file", str(params)])
    try:
        client.record(Image, "/qos/depth/image")
        camera = Camera(client, "/qos")
        wait_for_outputs(client, camera, ["/qos/depth/image"])

        def reliability(infos) -> list[ReliabilityPolicy]:
            return [info.qos_profile.reliability for info in infos]

        node = client.node
        assert reliability(node.get_publishers_info_by_topic("/qos/depth/points")) == [
            ReliabilityPolicy.BEST_EFFORT]
        assert reliability(node.get_publishers_info_by_topic("/qos/depth/image")) == [
            ReliabilityPolicy.RELIABLE]
        [image_sub] = node.get_subscriptions_info_by_topic("/qos/image")
        # default: best effort
        assert image_sub.qos_profile.reliability == ReliabilityPolicy.RELIABLE
        [info_sub] = node.get_subscriptions_info_by_topic("/qos/camera_info")
        assert info_sub.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
        assert "unknown parameter" not in proc.output()
    finally:
        proc.stop(signal.SIGKILL, 5.0)
