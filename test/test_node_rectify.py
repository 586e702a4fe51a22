"""The installed node on a distorted camera: it rectifies as image_proc would, over real DDS.

The reference is built here without the node: OpenCV's own undistort-rectify maps (the
calls image_proc's rectify node makes) applied to the same image, then the standalone
engine. Both compute in f32, so what is left is the maps' interpolation rounding.
"""

from __future__ import annotations

import signal

import cv2
import numpy as np
from sensor_msgs.msg import CameraInfo, Image

from depth_anything_ros.inference.engine import DepthEngine, EngineConfig
from ros_harness import Client, image_array, private_domain_id, stamp_key, start_node
from scenes import scene

HEIGHT, WIDTH = 120, 160
K = (140.0, 0.0, 81.0, 0.0, 132.0, 58.5, 0.0, 0.0, 1.0)
D = (-0.3, 0.1, 0.001, -0.0015, 0.0)
P = (150.0, 0.0, 80.0, 0.0, 0.0, 150.0, 60.0, 0.0, 0.0, 0.0, 1.0, 0.0)
IMAGE = scene(5, HEIGHT, WIDTH)
TIMEOUT_S = 60.0


def test_distorted_images_come_out_rectified_with_the_rectified_model(
        ros_workspace, tmp_path_factory, small_metric_ir):
    root, env = ros_workspace
    log_dir = tmp_path_factory.mktemp("rectify_node")
    proc = start_node(env, root, log_dir, private_domain_id(), [
        "-r", "__ns:=/rect", "-p", f"model_path:={small_metric_ir}",
        "-p", "inference_precision:=f32", "-p", f"cache_dir:={log_dir / 'ov_cache'}"])
    client = Client(private_domain_id(), name="rectify_test_client")
    try:
        client.record(Image, "/rect/depth/image")
        client.record(CameraInfo, "/rect/depth/camera_info")
        image_pub = client.publisher(Image, "/rect/image", reliable=True)
        info_pub = client.publisher(CameraInfo, "/rect/camera_info", reliable=True)
        sent = []

        def publish() -> None:
            stamp = client.now()
            info = CameraInfo(height=HEIGHT, width=WIDTH, k=K, d=list(D), p=P,
                              r=[1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0], distortion_model="plumb_bob")
            msg = Image(height=HEIGHT, width=WIDTH, encoding="bgr8", step=WIDTH * 3,
                        data=IMAGE.tobytes())
            for m in (info, msg):
                m.header.stamp, m.header.frame_id = stamp, "lens_optical_frame"
            info_pub.publish(info)
            image_pub.publish(msg)
            sent.append(stamp_key(msg.header))

        def answered():
            for key in reversed(sent):
                if all(key in client.received.get(t, {})
                       for t in ("/rect/depth/image", "/rect/depth/camera_info")):
                    return key
            return None

        assert client.spin_until(lambda: answered() is not None, TIMEOUT_S, tick=publish,
                                 period_s=0.2), proc.output()
        key = answered()
        depth = image_array(client.received["/rect/depth/image"][key])
        info = client.received["/rect/depth/camera_info"][key]
    finally:
        client.close()
        proc.stop(signal.SIGINT, 10.0)

    map1, map2 = cv2.initUndistortRectifyMap(
        np.array(K).reshape(3, 3), np.array(D), np.eye(3), np.array(P).reshape(3, 4)[:, :3],
        (WIDTH, HEIGHT), cv2.CV_32FC1)
    rectified = cv2.remap(IMAGE, map1, map2, cv2.INTER_LINEAR)
    expected = DepthEngine(EngineConfig(str(small_metric_ir), inference_precision="f32",
                                        cache_dir="none")).infer(rectified, "bgr")
    relative_error = np.abs(depth - expected) / expected
    assert np.median(relative_error) < 0.01, np.median(relative_error)
    unrectified = DepthEngine(EngineConfig(str(small_metric_ir), inference_precision="f32",
                                           cache_dir="none")).infer(IMAGE, "bgr")
    assert not np.allclose(unrectified, expected, rtol=0.01)  # the check can tell them apart
    assert info.header.frame_id == "lens_optical_frame"
    assert list(info.d) == [0.0] * 5 and info.distortion_model == "plumb_bob"
    assert list(info.k) == [150.0, 0.0, 80.0, 0.0, 150.0, 60.0, 0.0, 0.0, 1.0]
    assert list(info.r) == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    assert list(info.p) == list(P)
