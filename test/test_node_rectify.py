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

from ros_camera import Camera, complete_stamp, pinhole_info, TIMEOUT_S
from ros_harness import Client, image_array
from scenes import scene

HEIGHT, WIDTH = 120, 160
K = (140.0, 0.0, 81.0, 0.0, 132.0, 58.5, 0.0, 0.0, 1.0)
D = (-0.3, 0.1, 0.001, -0.0015, 0.0)
P = (150.0, 0.0, 80.0, 0.0, 0.0, 150.0, 60.0, 0.0, 0.0, 0.0, 1.0, 0.0)
IMAGE = scene(5, HEIGHT, WIDTH)
TOPICS = ["/rect/depth/image", "/rect/depth/camera_info"]


def test_distorted_images_come_out_rectified_with_the_rectified_model(
        launch_node, small_metric_ir, reference_engine):
    proc = launch_node("rectify_node", [
        "-r", "__ns:=/rect", "-p", f"model_path:={small_metric_ir}",
        "-p", "inference_precision:=f32"])
    client = Client(name="rectify_test_client")
    try:
        client.record(Image, "/rect/depth/image")
        client.record(CameraInfo, "/rect/depth/camera_info")
        camera = Camera(client, "/rect", IMAGE, info=pinhole_info(HEIGHT, WIDTH, K, d=list(D), p=P),
                        frame_id="lens_optical_frame")
        assert client.spin_until(lambda: complete_stamp(client, TOPICS, camera.sent) is not None,
                                 TIMEOUT_S, tick=camera.publish, period_s=0.2), proc.output()
        key = complete_stamp(client, TOPICS, camera.sent)
        depth = image_array(client.received["/rect/depth/image"][key])
        info = client.received["/rect/depth/camera_info"][key]
    finally:
        client.close()
        proc.stop(signal.SIGINT, 10.0)

    map1, map2 = cv2.initUndistortRectifyMap(
        np.array(K).reshape(3, 3), np.array(D), np.eye(3), np.array(P).reshape(3, 4)[:, :3],
        (WIDTH, HEIGHT), cv2.CV_32FC1)
    rectified = cv2.remap(IMAGE, map1, map2, cv2.INTER_LINEAR)
    engine = reference_engine(small_metric_ir)
    expected = engine.infer(rectified, "bgr")
    relative_error = np.abs(depth - expected) / expected
    assert np.median(relative_error) < 0.01, np.median(relative_error)
    # The check can tell them apart: the depth of the image as it came fails it.
    unrectified = np.abs(engine.infer(IMAGE, "bgr") - expected) / expected
    assert np.median(unrectified) >= 0.01, np.median(unrectified)
    assert info.header.frame_id == "lens_optical_frame"
    assert list(info.d) == [0.0] * 5 and info.distortion_model == "plumb_bob"
    assert list(info.k) == [150.0, 0.0, 80.0, 0.0, 150.0, 60.0, 0.0, 0.0, 1.0]
    assert list(info.r) == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    assert list(info.p) == list(P)
