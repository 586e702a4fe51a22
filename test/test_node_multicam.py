"""One installed node serving three cameras from one model, over real DDS.

Two cameras of different sizes, frame_ids and calibrations publish; a third, listed in
``cameras``, never does. Each publishing camera's outputs must come back in its own
namespace with its own header and calibration, equal to the standalone engine's depth on
the same frames (both in f32), and /diagnostics must carry one status per camera.
"""

from __future__ import annotations

import signal

import numpy as np
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from depth_anything_ros.ros import diagnostics as diag
from ros_camera import Camera, pinhole_info
from ros_diagnostics import DiagnosticsReader, status_name
from ros_harness import Client, image_array, stamp_key
from scenes import scene

NS = "/robot"
CAMERAS = {  # name: (height, width, frame_id, fx, seed)
    "front": (240, 320, "front_optical_frame", 260.0, 1),
    "rear": (180, 320, "rear_optical_frame", 190.0, 2),
}
SILENT = "wrist"
OUTPUTS = (("depth/image", Image), ("depth/camera_info", CameraInfo),
           ("depth/colorized", Image), ("depth/points", PointCloud2))
FRAMES = 4          # answered frames wanted per camera
TIMEOUT_S = 90.0


def _info(name: str) -> CameraInfo:
    height, width, _, fx, _ = CAMERAS[name]
    cx, cy = width / 2 - 0.5, height / 2 + 1.5
    return pinhole_info(height, width, [fx, 0.0, cx, 0.0, fx * 1.01, cy, 0.0, 0.0, 1.0],
                        p=[fx, 0.0, cx, 0.0, 0.0, fx * 1.01, cy, 0.0, 0.0, 0.0, 1.0, 0.0])


def test_each_camera_gets_its_own_outputs_from_the_shared_model(launch_node, small_metric_ir,
                                                                reference_engine):
    proc = launch_node("multicam_node", [
        "-r", f"__ns:={NS}", "-p", f"model_path:={small_metric_ir}",
        "-p", "inference_precision:=f32",
        "-p", f"cameras:=[front, rear, {SILENT}]", "-p", "diagnostics_period:=0.5",
        "-p", "flying_pixel_filter:=false"])
    client = Client(name="multicam_test_client")
    sent: dict[str, dict[tuple[int, int], np.ndarray]] = {name: {} for name in CAMERAS}
    try:
        for name in (*CAMERAS, SILENT):
            for topic, msg_type in OUTPUTS:
                client.record(msg_type, f"{NS}/{name}/{topic}")
        diagnostics = DiagnosticsReader(client)
        cameras = {name: Camera(client, f"{NS}/{name}", scene(seed * 100, height, width),
                                info=_info(name), frame_id=frame_id)
                   for name, (height, width, frame_id, _, seed) in CAMERAS.items()}
        count = [0]

        def publish() -> None:
            count[0] += 1
            for name, camera in cameras.items():
                height, width, _, _, seed = CAMERAS[name]
                camera.pixels = scene(seed * 100 + count[0] % 3, height, width)
                sent[name][camera.publish()] = camera.pixels

        def answered(name: str) -> list[tuple[int, int]]:
            return [key for key in sent[name]
                    if all(key in client.received[f"{NS}/{name}/{topic}"] for topic, _ in OUTPUTS)]

        def published(name: str) -> int:
            return int(diagnostics.values(status_name(NS, name)).get(diag.KEY_PUBLISHED, 0))

        assert client.spin_until(lambda: all(len(answered(n)) >= FRAMES for n in CAMERAS),
                                 TIMEOUT_S, tick=publish, period_s=0.4), (
            {n: len(answered(n)) for n in CAMERAS}, proc.output())
        assert client.spin_until(lambda: all(published(n) >= FRAMES for n in CAMERAS), 10.0), (
            {n: diagnostics.values(status_name(NS, n)) for n in CAMERAS})
        reports = {n: diagnostics.values(status_name(NS, n)) for n in (*CAMERAS, SILENT)}
        proc.stop_cleanly(signal.SIGINT)
    finally:
        client.close()
        proc.stop(signal.SIGKILL, 5.0)

    engine = reference_engine(small_metric_ir)
    for name, (height, width, frame_id, _, _) in CAMERAS.items():
        keys = answered(name)
        for key in keys:
            depth_msg = client.received[f"{NS}/{name}/depth/image"][key]
            info = client.received[f"{NS}/{name}/depth/camera_info"][key]
            cloud = client.received[f"{NS}/{name}/depth/points"][key]
            for msg in (depth_msg, info, cloud):
                assert msg.header.frame_id == frame_id and stamp_key(msg.header) == key
            assert (info.height, info.width) == (height, width)
            assert list(info.k) == list(_info(name).k)
            assert (cloud.height, cloud.width) == (height, width)
            expected = engine.infer(sent[name][key], "bgr")
            np.testing.assert_allclose(image_array(depth_msg), expected, rtol=1e-4, atol=1e-5)
        # Each camera's outputs in stamp order: every answered stamp arrives ascending.
        arrived = list(client.received[f"{NS}/{name}/depth/image"])
        assert arrived == sorted(arrived)
    for topic, _ in OUTPUTS:
        assert not client.received[f"{NS}/{SILENT}/{topic}"]

    assert all(reports.values()), reports   # a status for every camera, the silent one too
    for name in CAMERAS:
        values = reports[name]
        assert values["camera"] == name
        assert int(values[diag.KEY_PUBLISHED]) >= FRAMES
        assert values["calibration"] == "camera_info"
    assert reports[SILENT][diag.KEY_RECEIVED] == "0"
