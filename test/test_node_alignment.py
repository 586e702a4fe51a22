"""The installed node aligns a relative model to a metric reference, over real DDS.

The reference is made from the node's own network output (its depth/relative topic) by
a known affine map in inverse depth, so the aligned depth the node then publishes must
be that map applied to the same output: 1 / (s * output + t). Bad references on the
same topic are counted under their reasons while the node keeps the last good fit.
"""

from __future__ import annotations

import signal

import numpy as np
from sensor_msgs.msg import Image

from depth_anything_ros.geometry.reference import REFERENCE_ASPECT, REFERENCE_EMPTY
from depth_anything_ros.pipeline.notes import REJECT_REFERENCE_ENCODING
from depth_anything_ros.ros import diagnostics as diag
from ros_camera import Camera, pinhole_info, TIMEOUT_S
from ros_diagnostics import DiagnosticsReader, status_name
from ros_harness import Client, image_array
from scenes import scene

HEIGHT, WIDTH = 120, 160
NS = "/aligned"
IMAGE = scene(5, HEIGHT, WIDTH)
K = (150.0, 0.0, 80.0, 0.0, 150.0, 60.0, 0.0, 0.0, 1.0)
P = (150.0, 0.0, 80.0, 0.0, 0.0, 150.0, 60.0, 0.0, 0.0, 0.0, 1.0, 0.0)
SCALE, SHIFT = 0.2, 0.05          # metric inverse depth = SCALE * relative + SHIFT
REFERENCE_FRACTION = 0.02         # sparse: 384 of 19200 pixels


def _depth_msg(depth: np.ndarray, encoding: str = "32FC1") -> Image:
    data = depth.astype(np.float32) if encoding == "32FC1" else depth
    return Image(height=data.shape[0], width=data.shape[1], encoding=encoding,
                 step=data.shape[1] * data.itemsize, data=data.tobytes())


def test_relative_model_is_aligned_to_a_reference_made_from_its_own_output(
        launch_node, small_relative_ir):
    proc = launch_node("aligned_node", [
        "-r", f"__ns:={NS}", "-p", f"model_path:={small_relative_ir}",
        "-p", "inference_precision:=f32", "-p", "scale_source:=depth",
        "-p", "alignment_time_constant:=0.5", "-p", "diagnostics_period:=0.5",
        "-p", "flying_pixel_filter:=false"])
    client = Client(name="alignment_test_client")
    rng = np.random.default_rng(3)
    reference: dict[str, Image] = {}
    try:
        for topic in ("depth/image", "depth/relative"):
            client.record(Image, f"{NS}/{topic}")
        diagnostics = DiagnosticsReader(client)
        status = status_name(NS)
        camera = Camera(client, NS, IMAGE, info=pinhole_info(HEIGHT, WIDTH, K, p=P),
                        frame_id="camera_optical_frame")
        sent = camera.sent
        reference_pub = client.publisher(Image, f"{NS}/reference/depth", reliable=True)

        def publish() -> None:
            """Send a frame, and first (once there is one) the reference of its stamp."""
            stamp = client.now()
            if "good" in reference:
                good = reference["good"]
                good.header.stamp, good.header.frame_id = stamp, camera.frame_id
                reference_pub.publish(good)
            camera.publish(stamp=stamp)

        relative_topic = f"{NS}/depth/relative"
        assert client.spin_until(lambda: client.received[relative_topic], TIMEOUT_S,
                                 tick=publish, period_s=0.2), proc.output()
        # Before any reference: no metres from a relative model.
        assert not client.received[f"{NS}/depth/image"]
        relative = image_array(next(iter(client.received[relative_topic].values()))).copy()
        expected = 1.0 / (SCALE * relative.astype(np.float64) + SHIFT)
        sparse = np.full(relative.shape, np.nan, np.float32)
        chosen = rng.random(relative.shape) < REFERENCE_FRACTION
        sparse[chosen] = expected[chosen]
        reference["good"] = _depth_msg(sparse)
        first_aligned = len(sent)

        def aligned_after(count: int) -> bool:
            return any(key in client.received[f"{NS}/depth/image"] for key in sent[count:])

        assert client.spin_until(lambda: aligned_after(first_aligned + 3), TIMEOUT_S,
                                 tick=publish, period_s=0.2), proc.output()
        key = next(k for k in reversed(sent) if k in client.received[f"{NS}/depth/image"])
        depth = image_array(client.received[f"{NS}/depth/image"][key])
        error = np.abs(depth / expected - 1.0)
        assert np.median(error) <= 0.01, np.median(error)

        # Bad references: each counted under its reason; depth keeps coming, still aligned.
        bad = {REJECT_REFERENCE_ENCODING: _depth_msg(sparse.astype(np.float64), "64FC1"),
               REFERENCE_ASPECT: _depth_msg(np.ones((HEIGHT, HEIGHT), np.float32)),
               REFERENCE_EMPTY: _depth_msg(np.zeros((HEIGHT // 2, WIDTH // 2), np.float32))}
        for msg in bad.values():
            msg.step = msg.width * (8 if msg.encoding == "64FC1" else 4)
            msg.header.stamp = client.now()
            reference_pub.publish(msg)
        before_bad = len(sent)

        def counted() -> bool:
            values = diagnostics.values(status)
            return all(int(values.get(diag.rejected_key(kind), 0)) >= 1 for kind in bad)

        assert client.spin_until(lambda: counted() and aligned_after(before_bad + 2), TIMEOUT_S,
                                 tick=publish, period_s=0.2), (diagnostics.values(status),
                                                               proc.output())
        key = next(k for k in reversed(sent) if k in client.received[f"{NS}/depth/image"])
        depth = image_array(client.received[f"{NS}/depth/image"][key])
        assert np.median(np.abs(depth / expected - 1.0)) <= 0.01
        values = diagnostics.values(status)
        assert values["scale source"] == "depth"
        assert int(values["alignment inliers"]) >= 0.9 * chosen.sum()
        assert float(values["alignment residual"]) <= 0.01
        assert float(values["alignment fit age (s)"]) <= 1.0
        # The fitted map, in raw output units, is the one the reference was made with.
        assert abs(float(values["alignment scale"]) / SCALE - 1.0) <= 0.02
        assert abs(float(values["alignment shift"]) - SHIFT) <= 0.02 * SHIFT + 0.002
        proc.stop_cleanly(signal.SIGINT)
        assert "metric scale aligned from /aligned/reference/depth" in proc.output()
    finally:
        client.close()
        proc.stop(signal.SIGKILL, 5.0)
