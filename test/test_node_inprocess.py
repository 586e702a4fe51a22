"""The node in this process (no colcon, no subprocess): diagnostics describe what was published.

Three cameras share one engine and two inference lanes. Each camera's calibration comes
from a different source: its own CameraInfo every frame, a CameraInfo for the first frame
only (later frames take the latest one), none at all (the field-of-view fallback). The
diagnostics must report, per camera, the source of the frames it published and counts
that add up to them, whichever lane ran which frame.
"""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from depth_anything_ros.ros import diagnostics as diag
from depth_anything_ros.ros.codec import array_to_image
from recorded_bags import pinhole_k
from ros_harness import Client, node_in_process, private_domain_id
from scenes import scene

NS = "/inproc"
HEIGHT, WIDTH = 120, 160
ROUNDS = 4
TIMEOUT_S = 120.0
EXPECTED_SOURCE = {"every": "camera_info", "first": "camera_info (latest, stamp differs)",
                   "none": "fallback: hfov 60.0 deg"}


def test_two_lanes_three_cameras_diagnostics_match_the_published_frames(small_metric_ir):
    client = Client(private_domain_id(), "inprocess_client")
    engines = []

    def reference_engine(config, max_compiled):
        from depth_anything_ros.ros.node import default_engine
        engine = default_engine(config, max_compiled)
        engines.append(engine)
        return engine

    node = node_in_process(
        client, NS, reference_engine, model_path=str(small_metric_ir),
        cameras=list(EXPECTED_SOURCE), inference_workers=2, performance_hint="THROUGHPUT",
        inference_precision="f32", cache_dir="none", input_qos="reliable",
        diagnostics_period=0.2)
    try:
        assert len(engines) == 1   # one engine for every camera, from the factory
        reports: dict[str, dict[str, str]] = {}
        client.node.create_subscription(
            DiagnosticArray, "/diagnostics",
            lambda msg: reports.update({s.name: {kv.key: kv.value for kv in s.values}
                                        for s in msg.status}), 10)
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        images, infos = {}, {}
        for camera in EXPECTED_SOURCE:
            client.record(Image, f"{NS}/{camera}/depth/image")
            images[camera] = client.node.create_publisher(Image, f"{NS}/{camera}/image", qos)
            infos[camera] = client.node.create_publisher(CameraInfo, f"{NS}/{camera}/camera_info",
                                                         qos)
        assert client.spin_until(lambda: all(p.get_subscription_count() for p in images.values())
                                 and all(p.get_subscription_count() for p in infos.values()),
                                 TIMEOUT_S)
        for index in range(ROUNDS):
            header = Header(frame_id="optical")
            header.stamp.sec, header.stamp.nanosec = 100 + index, 0
            for camera, pub in images.items():
                if camera == "every" or (camera == "first" and index == 0):
                    infos[camera].publish(CameraInfo(header=header, width=WIDTH, height=HEIGHT,
                                                     k=pinhole_k(WIDTH, HEIGHT),
                                                     distortion_model="plumb_bob", d=[0.0] * 5))
            client.spin_until(lambda: False, 0.2)   # CameraInfo first, as drivers send it
            for camera, pub in images.items():
                pub.publish(array_to_image(scene(index, HEIGHT, WIDTH), "bgr8", header))
            assert client.spin_until(
                lambda: all((100 + index, 0) in client.received[f"{NS}/{c}/depth/image"]
                            for c in EXPECTED_SOURCE), TIMEOUT_S), index
        for camera in EXPECTED_SOURCE:
            stamps = list(client.received[f"{NS}/{camera}/depth/image"])
            assert stamps == [(100 + i, 0) for i in range(ROUNDS)], camera

        def status(camera: str) -> dict[str, str]:
            return reports.get(f"{NS.strip('/')}/depth_anything: {camera} depth estimation", {})

        assert client.spin_until(lambda: all(
            status(c).get(diag.KEY_PUBLISHED) == str(ROUNDS) for c in EXPECTED_SOURCE),
            TIMEOUT_S), reports
        for camera, source in EXPECTED_SOURCE.items():
            values = status(camera)
            assert values["calibration"] == source, (camera, values)
            assert values[diag.KEY_RECEIVED] == str(ROUNDS), (camera, values)
            assert all(values[key] == "0" for key in (diag.KEY_DROPPED, diag.KEY_SKIPPED,
                                                      diag.KEY_FAILED, diag.KEY_REJECTED))
    finally:
        client.executor.remove_node(node)
        node.destroy_node()
        client.close()
