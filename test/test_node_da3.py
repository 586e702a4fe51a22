"""The installed node with Depth Anything 3 IRs, over real rclpy, against the infer CLI.

Metric-Large (the session's one Large export, 378x504) is fed upstream's golden scene with
its camera: metres follow the CameraInfo's focal length and the sky is +Inf. DA3-Small
(140x182) publishes its confidence, and its cloud loses exactly the least confident share.
The CLI runs the same pipeline on the same frame and intrinsics, so the node must match it.
"""

from __future__ import annotations

from pathlib import Path
import signal
import subprocess
import sys

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import Image, PointCloud2

from depth_anything_ros.geometry.colorize import Colorizer

from ros_camera import Camera, pinhole_info, wait_for_outputs
from ros_harness import Client, cloud_arrays, image_array
from scenes import scene

TIMEOUT_S = 180.0                  # a Large model's first compile and frame on 2 cores
GOLDEN_K = (500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0)   # the golden's camera
SMALL_K = (140.0, 0.0, 79.5, 0.0, 140.0, 59.5, 0.0, 0.0, 1.0)


def cli(tmp_path: Path, ir: Path, bgr: np.ndarray, k: tuple[float, ...],
        *outputs: str, extra: tuple[str, ...] = ()) -> tuple[dict[str, np.ndarray], str]:
    """Run depth_anything_infer on ``bgr`` with intrinsics ``k``.

    Returns the named .npy files and what it printed.
    """
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), bgr)
    paths = {name: tmp_path / f"{name}.npy" for name in outputs}
    args = [f"--{name}-npy" for name in outputs]
    command = [sys.executable, "-m", "depth_anything_ros.cli.infer", "--model", str(ir),
               "--image", str(image), "--fx", str(k[0]), "--fy", str(k[4]),
               "--cx", str(k[2]), "--cy", str(k[5])]
    for flag, path in zip(args, paths.values()):
        command += [flag, str(path)]
    command += extra
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return {name: np.load(path) for name, path in paths.items()}, result.stdout


def frame(client: Client, camera: Camera, bgr: np.ndarray, k: tuple[float, ...],
          topics: list[str]) -> dict[str, object]:
    """Publish ``bgr`` with ``k`` until a frame comes back on every topic; its messages."""
    camera.pixels, camera.info = bgr, pinhole_info(*bgr.shape[:2], k)
    key = wait_for_outputs(client, camera, topics, TIMEOUT_S, after=len(camera.sent),
                           period_s=0.5)
    return {topic: client.received[topic][key] for topic in topics}


@pytest.fixture(scope="module")
def client():
    c = Client(name="da3_test_client")
    yield c
    c.close()


def _node(launch_node, name: str, args: list[str]):
    proc = launch_node(name, args)
    yield proc
    proc.stop(signal.SIGKILL, 5.0)


@pytest.fixture(scope="module")
def metric_node(launch_node, da3_metric_ir):
    yield from _node(launch_node, "da3_metric_node", [
        "-r", "__ns:=/da3m", "-p", f"model_path:={da3_metric_ir}",
        # The synthetic weights' depth is rough: the flying-pixel filter would thin the cloud
        # this test reads the sky from (it has tests of its own).
        "-p", "flying_pixel_filter:=false", "-p", "cloud_max_range:=1000.0"])


@pytest.fixture(scope="module")
def small_node(launch_node, da3_small_ir):
    yield from _node(launch_node, "da3_small_node", [
        "-r", "__ns:=/da3s", "-p", f"model_path:={da3_small_ir}", "-p", "relative_scale:=1.0",
        "-p", "flying_pixel_filter:=false", "-p", "cloud_max_range:=1000.0",
        "-p", "confidence_drop_fraction:=0.0"])


METRIC_TOPICS = ["/da3m/depth/image", "/da3m/depth/points", "/da3m/depth/colorized"]


def test_metric_depth_follows_the_focal_length_and_sky_is_infinite(
        metric_node, client, da3_golden, da3_metric_ir, tmp_path):
    bgr = da3_golden("da3metric-large")["input_bgr"]
    for topic, msg_type in zip(METRIC_TOPICS, (Image, PointCloud2, Image)):
        client.record(msg_type, topic)
    camera = Camera(client, "/da3m")
    got = frame(client, camera, bgr, GOLDEN_K, METRIC_TOPICS)
    depth = image_array(got["/da3m/depth/image"])
    sky = np.isposinf(depth)
    # Upstream's forward marks 39.9 % of this scene as sky (sky >= 0.3).
    assert 0.3 < sky.mean() < 0.5, sky.mean()
    assert np.all(np.isfinite(depth[~sky])) and depth[~sky].min() > 0
    xyz, _ = cloud_arrays(got["/da3m/depth/points"])
    assert np.all(np.isnan(xyz[sky])) and np.all(np.isfinite(xyz[~sky]))
    assert np.all(image_array(got["/da3m/depth/colorized"])[sky] == 0)

    # The same frame through the CLI with the same intrinsics: the same image.
    colour_png = tmp_path / "colour.png"
    expected, printed = cli(tmp_path, da3_metric_ir, bgr, GOLDEN_K, "depth",
                            extra=("--output", str(colour_png)))
    expected = expected["depth"]
    np.testing.assert_array_equal(np.isposinf(expected), sky)
    np.testing.assert_allclose(depth[~sky], expected[~sky], rtol=1e-4)
    # The CLI's colour range is the 2nd-98th percentile of the ground alone: the value the
    # network leaves under the sky means nothing (here it would move the range by ~7 %).
    low, high = np.percentile(expected[~sky], [2, 98])
    line = next(t for t in printed.splitlines() if t.startswith("colour range"))
    shown = [float(v) for v in line.split("[")[1].split("]")[0].split(",")]
    np.testing.assert_allclose(shown, [low, high], rtol=1e-3)
    np.testing.assert_array_equal(cv2.imread(str(colour_png)),
                                  Colorizer("turbo", low, high)(expected))

    doubled = tuple(v * 2 if i in (0, 4) else v for i, v in enumerate(GOLDEN_K))
    again = image_array(frame(client, camera, bgr, doubled, METRIC_TOPICS)["/da3m/depth/image"])
    np.testing.assert_array_equal(np.isposinf(again), sky)
    ratio = again[~sky] / depth[~sky]
    assert abs(float(np.median(ratio)) - 2.0) <= 0.02 and np.all(np.abs(ratio - 2.0) <= 0.02)
    rc, _ = metric_node.stop(signal.SIGINT, 10.0)
    assert rc == 0, metric_node.output()


SMALL_TOPICS = ["/da3s/depth/confidence", "/da3s/depth/points"]


def test_small_publishes_its_confidence_and_the_cloud_drops_the_least_confident(
        small_node, client, da3_small_ir, tmp_path):
    bgr = scene(4, 120, 160)
    for topic, msg_type in zip(SMALL_TOPICS, (Image, PointCloud2)):
        client.record(msg_type, topic)
    camera = Camera(client, "/da3s")
    got = frame(client, camera, bgr, SMALL_K, SMALL_TOPICS)
    confidence = image_array(got["/da3s/depth/confidence"])
    assert confidence.shape == (120, 160) and confidence.min() > 1.0  # exp + 1
    expected = cli(tmp_path, da3_small_ir, bgr, SMALL_K, "confidence")[0]["confidence"]
    np.testing.assert_allclose(confidence, expected, rtol=1e-5)
    full, _ = cloud_arrays(got["/da3s/depth/points"])
    finite = np.isfinite(full[..., 2])
    assert finite.mean() > 0.9

    [result] = client.set_parameters("/da3s/depth_anything", confidence_drop_fraction=0.4)
    assert result.successful, result.reason
    camera.sent.clear()
    masked, _ = cloud_arrays(frame(client, camera, bgr, SMALL_K,
                                   SMALL_TOPICS)["/da3s/depth/points"])
    kept = np.isfinite(masked[..., 2])
    dropped = finite & ~kept
    assert abs(dropped.sum() / finite.sum() - 0.4) <= 0.01
    assert not (kept & ~finite).any()
    assert confidence[dropped].max() <= confidence[kept].min()   # the least confident went
