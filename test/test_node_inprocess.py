"""The node in this process (no colcon, no subprocess): diagnostics describe what was published.

Three cameras share one engine and two inference lanes. Each camera's calibration comes
from a different source: its own CameraInfo every frame, a CameraInfo for the first frame
only (later frames take the latest one), none at all (the field-of-view fallback). The
diagnostics must report, per camera, the source of the frames it published and counts
that add up to them, whichever lane ran which frame.
"""

from __future__ import annotations

from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image

from depth_anything_ros.ros import diagnostics as diag
from recorded_bags import pinhole_k
from ros_camera import Camera
from ros_diagnostics import DiagnosticsReader, status_name
from ros_harness import Client, node_in_process
from scenes import scene

NS = "/inproc"
HEIGHT, WIDTH = 120, 160
ROUNDS = 4
TIMEOUT_S = 120.0
EXPECTED_SOURCE = {"every": "camera_info", "first": "camera_info (latest, stamp differs)",
                   "none": "fallback: hfov 60.0 deg"}


def test_two_lanes_three_cameras_diagnostics_match_the_published_frames(small_metric_ir):
    client = Client("inprocess_client")
    engines = []

    def counted_engine(config, max_compiled):
        from depth_anything_ros.ros.node import default_engine
        engine = default_engine(config, max_compiled)
        engines.append(engine)
        return engine

    node = node_in_process(
        client, NS, counted_engine, model_path=str(small_metric_ir),
        cameras=list(EXPECTED_SOURCE), inference_workers=2, performance_hint="THROUGHPUT",
        inference_precision="f32", cache_dir="none", input_qos="reliable",
        diagnostics_period=0.2)
    try:
        assert len(engines) == 1   # one engine for every camera, from the factory
        diagnostics = DiagnosticsReader(client)
        cameras = {}
        for name in EXPECTED_SOURCE:
            client.record(Image, f"{NS}/{name}/depth/image")
            cameras[name] = Camera(client, f"{NS}/{name}", scene(0, HEIGHT, WIDTH),
                                   pinhole_k(WIDTH, HEIGHT), frame_id="optical")
        assert client.spin_until(lambda: all(c.connected() for c in cameras.values()), TIMEOUT_S)
        for index in range(ROUNDS):
            stamp = Time(sec=100 + index)
            for name, camera in cameras.items():
                if name == "every" or (name == "first" and index == 0):
                    camera.send_info(camera.info, stamp)
            client.spin_until(lambda: False, 0.2)   # CameraInfo first, as drivers send it
            for camera in cameras.values():
                camera.pixels = scene(index, HEIGHT, WIDTH)
                camera.send_image(camera.image_message(), stamp)
            assert client.spin_until(
                lambda: all((100 + index, 0) in client.received[f"{NS}/{c}/depth/image"]
                            for c in EXPECTED_SOURCE), TIMEOUT_S), index
        for camera in EXPECTED_SOURCE:
            stamps = list(client.received[f"{NS}/{camera}/depth/image"])
            assert stamps == [(100 + i, 0) for i in range(ROUNDS)], camera

        def status(camera: str) -> dict[str, str]:
            return diagnostics.values(status_name(NS, camera))

        assert client.spin_until(lambda: all(
            status(c).get(diag.KEY_PUBLISHED) == str(ROUNDS) for c in EXPECTED_SOURCE),
            TIMEOUT_S), {c: status(c) for c in EXPECTED_SOURCE}
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
