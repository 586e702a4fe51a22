"""One installed node serving three cameras from one model, over real DDS.

Two cameras of different sizes, frame_ids and calibrations publish; a third, listed in
``cameras``, never does. Each publishing camera's outputs must come back in its own
namespace with its own header and calibration, equal to the standalone engine's depth on
the same frames (both in f32), and /diagnostics must carry one status per camera.
"""

from __future__ import annotations

import signal

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from depth_anything_ros.inference.engine import DepthEngine, EngineConfig
from depth_anything_ros.ros import diagnostics as diag
from ros_harness import Client, image_array, private_domain_id, stamp_key, start_node
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
    return CameraInfo(height=height, width=width, distortion_model="plumb_bob", d=[0.0] * 5,
                      k=[fx, 0.0, cx, 0.0, fx * 1.01, cy, 0.0, 0.0, 1.0],
                      r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                      p=[fx, 0.0, cx, 0.0, 0.0, fx * 1.01, cy, 0.0, 0.0, 0.0, 1.0, 0.0])


def test_each_camera_gets_its_own_outputs_from_the_shared_model(
        ros_workspace, tmp_path_factory, small_metric_ir):
    root, env = ros_workspace
    log_dir = tmp_path_factory.mktemp("multicam_node")
    proc = start_node(env, root, log_dir, private_domain_id(), [
        "-r", f"__ns:={NS}", "-p", f"model_path:={small_metric_ir}",
        "-p", "inference_precision:=f32", "-p", f"cache_dir:={log_dir / 'ov_cache'}",
        "-p", f"cameras:=[front, rear, {SILENT}]", "-p", "diagnostics_period:=0.5",
        "-p", "flying_pixel_filter:=false"])
    client = Client(private_domain_id(), name="multicam_test_client")
    sent: dict[str, dict[tuple[int, int], np.ndarray]] = {name: {} for name in CAMERAS}
    try:
        for name in (*CAMERAS, SILENT):
            for topic, msg_type in OUTPUTS:
                client.record(msg_type, f"{NS}/{name}/{topic}")
        client.record(DiagnosticArray, "/diagnostics")
        publishers = {name: (client.publisher(Image, f"{NS}/{name}/image", reliable=True),
                             client.publisher(CameraInfo, f"{NS}/{name}/camera_info",
                                              reliable=True))
                      for name in CAMERAS}
        count = [0]

        def publish() -> None:
            count[0] += 1
            for name, (image_pub, info_pub) in publishers.items():
                height, width, frame_id, _, seed = CAMERAS[name]
                pixels = scene(seed * 100 + count[0] % 3, height, width)
                stamp = client.now()
                info = _info(name)
                msg = Image(height=height, width=width, encoding="bgr8", step=width * 3,
                            data=pixels.tobytes())
                for m in (info, msg):
                    m.header.stamp, m.header.frame_id = stamp, frame_id
                info_pub.publish(info)
                image_pub.publish(msg)
                sent[name][stamp_key(msg.header)] = pixels

        def answered(name: str) -> list[tuple[int, int]]:
            return [key for key in sent[name]
                    if all(key in client.received[f"{NS}/{name}/{topic}"] for topic, _ in OUTPUTS)]

        def statuses() -> dict[str, dict[str, str]]:
            found = {}
            for array in client.received["/diagnostics"].values():
                for status in array.status:
                    found[status.name] = {kv.key: kv.value for kv in status.values}
            return found

        assert client.spin_until(lambda: all(len(answered(n)) >= FRAMES for n in CAMERAS),
                                 TIMEOUT_S, tick=publish, period_s=0.4), (
            {n: len(answered(n)) for n in CAMERAS}, proc.output())
        prefix = f"{NS.strip('/')}/depth_anything: "

        def reported() -> bool:
            found = statuses()
            return all(int(found.get(f"{prefix}{n} depth estimation", {}).get(
                diag.KEY_PUBLISHED, 0)) >= FRAMES for n in CAMERAS)

        assert client.spin_until(reported, 10.0), statuses()
        reports = statuses()
    finally:
        client.close()
        code, _ = proc.stop(signal.SIGINT, 10.0)
    assert code == 0, proc.output()
    assert "Traceback" not in proc.output()

    engine = DepthEngine(EngineConfig(str(small_metric_ir), inference_precision="f32",
                                      cache_dir="none"))
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

    per_camera = {n: reports.get(f"{prefix}{n} depth estimation") for n in (*CAMERAS, SILENT)}
    assert all(v is not None for v in per_camera.values()), sorted(reports)
    for name in CAMERAS:
        values = per_camera[name]
        assert values["camera"] == name
        assert int(values[diag.KEY_PUBLISHED]) >= FRAMES
        assert values["calibration"] == "camera_info"
    assert per_camera[SILENT][diag.KEY_RECEIVED] == "0"
