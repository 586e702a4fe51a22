"""depth_anything_bag on recordings written with rosbags, read back with rosbags and rclpy.

The inputs are what a robot records: a VGA bgr8 camera and a JPEG camera, each with its
CameraInfo (one written before its image, one after), plus an unrelated topic, in MCAP
and in SQLite3. The IR is the session's small synthetic one (synthetic weights, real
architecture: a model for testing, not a depth model).
"""

from __future__ import annotations

from pathlib import Path
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from rclpy.serialization import deserialize_message
from rosbags.highlevel import AnyReader
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header
import yaml

from depth_anything_ros.cli import bag
from depth_anything_ros.inference.engine import DepthEngine, EngineConfig
from depth_anything_ros.pipeline.camera import CameraPipeline, Wanted
from depth_anything_ros.pipeline.messages.image_input import compressed_to_array, image_to_array
from depth_anything_ros.pipeline.messages.output_layout import camera_info_calibration
from depth_anything_ros.pipeline.parameters import NodeParams
from depth_anything_ros.ros.cloud_msg import CloudBuilder
from depth_anything_ros.ros.codec import array_to_image, intrinsics_to_camera_info
from recorded_bags import BagBuilder, pinhole_k, TYPES
from scenes import scene

REPO = Path(__file__).resolve().parents[1]
FRONT, REAR = "/front/image_raw", "/rear/image_raw/compressed"
FRAMES = 3
T0 = 1_700_000_000_000_000_000
PERIOD = 100_000_000
K_FRONT, K_REAR = pinhole_k(640, 480, 70.0), pinhole_k(640, 480, 90.0)
OUTPUTS = ("depth/image", "depth/camera_info", "depth/colorized", "depth/points")
# The tool's THROUGHPUT streams against the reference's LATENCY request, both in f32: the
# same arithmetic up to summation order (equal to the bit on the development machine).
DEPTH_RTOL = 1e-5


def record_cameras(path: Path, storage: str) -> None:
    with BagBuilder(path, storage) as recording:
        for index in range(FRAMES):
            stamp = T0 + index * PERIOD
            recording.camera_info("/front/camera_info", stamp, stamp, 640, 480, K_FRONT)
            recording.image(FRONT, stamp + 1000, scene(index), stamp, frame_id="front_optical")
            recording.compressed(REAR, stamp + 2000, scene(20 + index), stamp + 5,
                                 frame_id="rear_optical")
            # The rear camera's CameraInfo comes after its image: still its pair.
            recording.camera_info("/rear/camera_info", stamp + 3000, stamp + 5, 640, 480,
                                  K_REAR, frame_id="rear_optical")
            recording.write("/chatter", TYPES["std_msgs/msg/String"](data=f"frame {index}"),
                            stamp + 4000)


def run_tool(capsys, *argv: str) -> tuple[int, str, str]:
    code = bag.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read_bag(path: Path) -> dict[str, list[tuple[int, bytes, object]]]:
    """Topic -> [(bag timestamp, raw CDR, message)] as rosbags reads them."""
    found: dict[str, list] = {}
    with AnyReader([path]) as reader:
        for connection, timestamp, raw in reader.messages():
            found.setdefault(connection.topic, []).append(
                (timestamp, bytes(raw), reader.deserialize(raw, connection.msgtype)))
    return found


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ov_cache")


@pytest.fixture(scope="module", params=["mcap", "sqlite3"])
def processed(request, small_metric_ir, tmp_path_factory, cache_dir):
    """Record the cameras and run the tool on them, once per storage."""
    storage = request.param
    root = tmp_path_factory.mktemp(f"bag_{storage}")
    record_cameras(root / "input", storage)
    run = subprocess.run(
        [sys.executable, "-m", "depth_anything_ros.cli.bag", str(root / "input"),
         str(root / "output"), "--model", str(small_metric_ir), "--storage", storage,
         "--inference-precision", "f32", "-p", f"cache_dir:={cache_dir}"],
        capture_output=True, text=True, timeout=180, cwd=REPO)
    assert run.returncode == 0, run.stderr
    return storage, root / "input", root / "output", run.stdout


def test_outputs_have_the_topics_counts_headers_and_bag_timestamps_of_the_inputs(processed):
    storage, bag_in, bag_out, stdout = processed
    inputs, outputs = read_bag(bag_in), read_bag(bag_out)
    expected = {f"/{camera}/{name}" for camera in ("front", "rear") for name in OUTPUTS}
    assert set(outputs) == expected
    for camera, image_topic in (("front", FRONT), ("rear", REAR)):
        sources = inputs[image_topic]
        for name in OUTPUTS:
            written = outputs[f"/{camera}/{name}"]
            assert len(written) == FRAMES
            assert [t for t, _, _ in written] == [t for t, _, _ in sources]
            for (_, _, out), (_, _, source) in zip(written, sources):
                assert (out.header.stamp.sec, out.header.stamp.nanosec, out.header.frame_id) \
                    == (source.header.stamp.sec, source.header.stamp.nanosec,
                        source.header.frame_id)
    assert f"{2 * FRAMES} complete frames" in stdout
    assert f"{FRONT}: {FRAMES} of {FRAMES} frames" in stdout


def test_depth_is_the_engine_at_f32_on_the_same_decoded_frames(processed, small_metric_ir,
                                                               reference_engine):
    _, bag_in, bag_out, _ = processed
    inputs, outputs = read_bag(bag_in), read_bag(bag_out)
    engine = reference_engine(small_metric_ir)
    for camera, topic, decode in (("front", FRONT, image_to_array),
                                  ("rear", REAR, compressed_to_array)):
        for (_, _, source), (_, _, depth) in zip(inputs[topic],
                                                 outputs[f"/{camera}/depth/image"]):
            decoded = decode(source)
            expected = engine.infer(decoded.pixels, decoded.order)
            assert (depth.encoding, depth.height, depth.width) == ("32FC1", 480, 640)
            got = np.frombuffer(depth.data, "<f4").reshape(480, 640)
            np.testing.assert_allclose(got, expected, rtol=DEPTH_RTOL)


def test_each_frame_gets_the_camera_info_beside_it(processed):
    _, _, bag_out, _ = processed
    outputs = read_bag(bag_out)
    for camera, k in (("front", K_FRONT), ("rear", K_REAR)):
        for _, _, info in outputs[f"/{camera}/depth/camera_info"]:
            assert (info.width, info.height) == (640, 480)
            np.testing.assert_allclose(info.k, k, rtol=1e-12)


def test_messages_are_what_the_node_publishes_for_the_same_frames(processed, small_metric_ir):
    """The node's flow (add_calibration, check_stamp, infer, finish) and its message code."""
    _, bag_in, bag_out, _ = processed
    inputs, outputs = read_bag(bag_in), read_bag(bag_out)
    engine = DepthEngine(EngineConfig(str(small_metric_ir), performance_hint="THROUGHPUT",
                                      inference_precision="f32", cache_dir="none"))
    types = {"depth/image": Image, "depth/camera_info": CameraInfo, "depth/colorized": Image,
             "depth/points": PointCloud2}
    for camera, topic, decode in (("front", FRONT, image_to_array),
                                  ("rear", REAR, compressed_to_array)):
        pipeline, builder, p = CameraPipeline(engine), CloudBuilder(), NodeParams()
        for (_, _, info) in inputs[f"/{camera}/camera_info"]:
            stamp = info.header.stamp.sec * 1_000_000_000 + info.header.stamp.nanosec
            assert pipeline.add_calibration(camera_info_calibration(info), stamp) is None
        for index, (_, _, source) in enumerate(inputs[topic]):
            header = Header(frame_id=source.header.frame_id)
            header.stamp.sec, header.stamp.nanosec = (source.header.stamp.sec,
                                                      source.header.stamp.nanosec)
            stamp = header.stamp.sec * 1_000_000_000 + header.stamp.nanosec
            pipeline.check_stamp(stamp)
            out = pipeline.finish(pipeline.infer(decode(source), stamp, p), stamp, p,
                                  Wanted(relative=False))
            node = {"depth/image": array_to_image(out.depth, "32FC1", header),
                    "depth/camera_info": intrinsics_to_camera_info(out.intrinsics, header,
                                                                   out.calibration),
                    "depth/colorized": array_to_image(out.colorized, "bgr8", header),
                    "depth/points": builder.build(out.points, header, out.colors)}
            for name, expected in node.items():
                raw = outputs[f"/{camera}/{name}"][index][1]
                assert deserialize_message(raw, types[name]) == expected, (camera, name, index)


def test_metadata_is_complete(processed):
    storage, _, bag_out, _ = processed
    metadata = yaml.safe_load((bag_out / "metadata.yaml").read_text())
    info = metadata["rosbag2_bagfile_information"]
    assert info["storage_identifier"] == storage
    assert info["message_count"] == 2 * FRAMES * len(OUTPUTS)
    counts = {t["topic_metadata"]["name"]: t["message_count"]
              for t in info["topics_with_message_count"]}
    assert counts == {f"/{c}/{n}": FRAMES for c in ("front", "rear") for n in OUTPUTS}
    assert all(t["topic_metadata"]["type_description_hash"].startswith("RIHS01_")
               for t in info["topics_with_message_count"])
    first, last = T0 + 1000, T0 + (FRAMES - 1) * PERIOD + 2000
    assert info["starting_time"]["nanoseconds_since_epoch"] == first
    assert info["duration"]["nanoseconds"] == last - first
    with AnyReader([bag_out]) as reader:
        assert reader.message_count == 2 * FRAMES * len(OUTPUTS)
        assert (reader.start_time, reader.duration) == (first, last - first + 1)
        assert {name: t.msgcount for name, t in reader.topics.items()} == counts
        assert reader.topics["/front/depth/points"].msgtype == "sensor_msgs/msg/PointCloud2"


def test_copy_input_puts_every_input_message_beside_the_outputs(
        processed, small_metric_ir, cache_dir, capsys, tmp_path):
    storage, bag_in, _, _ = processed
    out = tmp_path / "both"
    out.mkdir()
    (out / "metadata.yaml").write_text("stale: true\n")   # a bag folder: --overwrite replaces it
    code, stdout, err = run_tool(capsys, bag_in, out, "--model", small_metric_ir,
                                 "--copy-input", "--overwrite", "--storage", storage,
                                 "--outputs", "depth,camera_info", "-p", f"cache_dir:={cache_dir}")
    assert code == 0, err
    inputs, both = read_bag(bag_in), read_bag(out)
    for topic, messages in inputs.items():
        assert [(t, raw) for t, raw, _ in both[topic]] == [(t, raw) for t, raw, _ in messages]
    outputs = set(both) - set(inputs)
    assert outputs == {f"/{c}/{n}" for c in ("front", "rear")
                       for n in ("depth/image", "depth/camera_info")}
    assert f"copied {sum(len(m) for m in inputs.values())} input messages" in stdout


def record_malformed(path: Path) -> None:
    """Record a small camera whose driver misbehaves, and a JPEG camera with a corrupt frame."""
    size = (120, 160)
    k = pinhole_k(160, 120)
    good = scene(5, *size)
    with BagBuilder(path, "mcap") as recording:
        stamps = [T0 + i * PERIOD for i in range(6)]
        stamps[4] = stamps[3] - PERIOD // 2          # behind the previous one: skipped
        for index, stamp in enumerate(stamps):
            t = T0 + index * PERIOD
            calibration = (0.0,) * 9 if index == 2 else k   # uncalibrated: ignored
            recording.camera_info("/cam/camera_info", t, stamp, 160, 120, calibration)
            if index == 1:
                recording.image("/cam/image_raw", t + 1, good, stamp, data=np.zeros(7, np.uint8))
            elif index == 2:
                recording.image("/cam/image_raw", t + 1, good, stamp, encoding="rgb16")
            else:
                recording.image("/cam/image_raw", t + 1, good, stamp)
            if index < 3:
                recording.compressed("/jpg/image_raw/compressed", t + 2, good, stamp,
                                     data=b"not a jpeg" if index == 1 else None)
        recording.write_raw("/cam/image_raw", "sensor_msgs/msg/Image", b"\x00\x01\x00\x00\x07",
                            T0 + 7 * PERIOD)


def test_malformed_messages_are_skipped_and_counted_by_the_node_reasons(
        small_metric_ir, cache_dir, capsys, tmp_path):
    record_malformed(tmp_path / "input")
    code, stdout, err = run_tool(capsys, tmp_path / "input", tmp_path / "output", "--model",
                                 small_metric_ir, "-p", f"cache_dir:={cache_dir}")
    assert code == 0, err
    assert "/cam/image_raw: 3 of 7 frames" in stdout
    assert ("rejected: camera_info_invalid 1, data_length 1, encoding 1, stamp_backwards 1; "
            "skipped as unreadable: 1") in stdout
    assert "/jpg/image_raw/compressed: 2 of 3 frames" in stdout
    assert "rejected: compressed_corrupt 1\n" in stdout
    outputs = read_bag(tmp_path / "output")
    assert {len(outputs[f"/cam/{name}"]) for name in OUTPUTS} == {3}
    assert {len(outputs[f"/jpg/{name}"]) for name in OUTPUTS} == {2}
    assert [t for t, _, _ in outputs["/cam/depth/image"]] == [
        T0 + i * PERIOD + 1 for i in (0, 3, 5)]


def test_camera_info_stamped_apart_from_its_images_still_pairs_from_the_first_frame(
        small_metric_ir, cache_dir, capsys, tmp_path):
    """A driver stamping CameraInfo 1 ns after its image, and recording it after the image.

    No stamp matches, so each frame takes the latest CameraInfo as the node does, and the
    tool waits for the one recorded beside it: the first frame is not left to the
    field-of-view fallback, however fast a lane picks it up.
    """
    k = pinhole_k(160, 120, 100.0)
    with BagBuilder(tmp_path / "input", "sqlite3") as recording:
        for index in range(4):
            stamp = T0 + index * PERIOD
            recording.image("/cam/image_raw", stamp, scene(index, 120, 160), stamp)
            recording.camera_info("/cam/camera_info", stamp + 10, stamp + 1, 160, 120, k)
        # A pause longer than the pairing window, then one more frame whose CameraInfo
        # never comes: it keeps the last one.
        late = T0 + 30 * PERIOD
        recording.image("/cam/image_raw", late, scene(9, 120, 160), late)
        recording.write("/chatter", TYPES["std_msgs/msg/String"](data="later"), late + 50 * PERIOD)
    code, stdout, err = run_tool(capsys, tmp_path / "input", tmp_path / "output", "--model",
                                 small_metric_ir, "--outputs", "camera_info,depth",
                                 "-p", f"cache_dir:={cache_dir}")
    assert code == 0, err
    assert "/cam/image_raw: 5 of 5 frames" in stdout
    infos = read_bag(tmp_path / "output")["/cam/depth/camera_info"]
    assert len(infos) == 5
    for _, _, info in infos:
        np.testing.assert_allclose(info.k, k, rtol=1e-12)   # the fallback would be 60 degrees


@pytest.fixture(scope="module")
def small_bag(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("small") / "input"
    with BagBuilder(path, "mcap") as recording:
        recording.camera_info("/cam/camera_info", T0, T0, 160, 120, pinhole_k(160, 120))
        recording.image("/cam/image_raw", T0, scene(1, 120, 160), T0)
    return path


@pytest.mark.parametrize("case,expected", [
    ("unknown topic", "topic /nope is not in the bag; its image topics are: /cam/image_raw"),
    ("wrong type", "topic /cam/camera_info is sensor_msgs/msg/CameraInfo, not "
                   "sensor_msgs/msg/Image or sensor_msgs/msg/CompressedImage"),
    ("missing bag", "input bag {missing} does not exist"),
    ("not a bag", "cannot read input bag {tmp}"),
    ("existing output", "{tmp}/taken exists; pass --overwrite to replace it"),
    ("overwrite a non-bag", "{tmp}/taken exists and is not a rosbag2 folder (no metadata.yaml); "
                            "not removing it"),
    ("integer for a float", "parameter 'colorize_max_depth' has the wrong type; expected a "
                            "floating-point number (write 10.0, not 10)"),
    ("missing model", "model file {tmp}/none.xml does not exist"),
])
def test_bad_input_is_one_line_and_exit_code_1(case, expected, small_bag, small_metric_ir,
                                               capsys, tmp_path):
    model, source, output, extra = small_metric_ir, small_bag, tmp_path / "out", []
    if case == "unknown topic":
        extra = ["--image-topic", "/nope"]
    elif case == "wrong type":
        extra = ["--image-topic", "/cam/camera_info"]
    elif case == "missing bag":
        source = tmp_path / "missing"
    elif case == "not a bag":
        source = tmp_path / "broken"
        source.mkdir()
        (source / "metadata.yaml").write_text("rosbag2_bagfile_information: [not, a, bag]\n")
    elif case in ("existing output", "overwrite a non-bag"):
        output = tmp_path / "taken"
        output.mkdir()
        (output / "notes.txt").write_text("mine")
        extra = ["--overwrite"] if case == "overwrite a non-bag" else []
    elif case == "integer for a float":
        params = tmp_path / "depth.yaml"
        params.write_text("/**/depth_anything:\n  ros__parameters:\n    colorize_max_depth: 10\n")
        extra = ["--params-file", str(params)]
    elif case == "missing model":
        model = tmp_path / "none.xml"
    code, stdout, err = run_tool(capsys, source, output, "--model", model, *extra)
    assert code == 1
    assert stdout == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    text = expected.format(missing=tmp_path / "missing", tmp=tmp_path)
    assert lines[0].startswith(f"depth_anything_bag: error: {text}"), lines[0]
    if case in ("existing output", "overwrite a non-bag"):
        assert (output / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_leaves_a_closed_bag_with_the_complete_frames_it_reports(
        signum, small_metric_ir, cache_dir, tmp_path):
    frames = 400
    with BagBuilder(tmp_path / "input", "mcap") as recording:
        image = scene(2, 120, 160)
        for index in range(frames):
            stamp = T0 + index * PERIOD
            recording.camera_info("/cam/camera_info", stamp, stamp, 160, 120, pinhole_k(160, 120))
            recording.image("/cam/image_raw", stamp + 1, image, stamp)
    output = tmp_path / "output"
    process = subprocess.Popen(
        [sys.executable, "-m", "depth_anything_ros.cli.bag", str(tmp_path / "input"),
         str(output), "--model", str(small_metric_ir), "-p", f"cache_dir:={cache_dir}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    # A frame's outputs reach the file as they are written (750 kB, most of it the cloud):
    # wait for the first few frames.
    data = output / "output.mcap"
    deadline = time.monotonic() + 120
    while not (data.is_file() and data.stat().st_size > 3_000_000):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signum, stderr
    reported = int(re.search(r"(\d+) complete frames", stdout).group(1))
    assert 3 <= reported < frames
    assert f"interrupted by {signal.Signals(signum).name}" in stdout
    outputs = read_bag(output)
    assert {name: len(outputs[f"/cam/{name}"]) for name in OUTPUTS} == {
        name: reported for name in OUTPUTS}
    stamps = [T0 + index * PERIOD for index in range(reported)]
    for name in OUTPUTS:
        assert [t for t, _, _ in outputs[f"/cam/{name}"]] == [s + 1 for s in stamps]
        assert [m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec
                for _, _, m in outputs[f"/cam/{name}"]] == stamps
    metadata = yaml.safe_load((output / "metadata.yaml").read_text())
    assert metadata["rosbag2_bagfile_information"]["message_count"] == reported * len(OUTPUTS)


def test_recorded_depth_references_align_a_relative_model(small_relative_ir, tmp_path, capsys,
                                                          cache_dir, reference_engine):
    """A recorded ToF-like reference/depth beside the camera: the node's alignment runs.

    The reference is made from the model's own output by a known map, so each written
    depth/image must be 1 / (s * output + t) for its frame.
    """
    engine = reference_engine(small_relative_ir)
    scale, shift = 0.25, 0.03
    rng = np.random.default_rng(4)
    truths = {}
    with BagBuilder(tmp_path / "input", "mcap") as recording:
        for index in range(FRAMES):
            stamp = T0 + index * PERIOD
            pixels = scene(40 + index, 120, 160)
            truth = 1.0 / (scale * engine.infer(pixels).astype(np.float64) + shift)
            sparse = np.where(rng.random(truth.shape) < 0.05, truth, 0.0).astype(np.float32)
            recording.image("/tof/reference/depth", stamp, sparse, stamp, encoding="32FC1")
            recording.image("/tof/image_raw", stamp + 1000, pixels, stamp)
            truths[stamp] = truth
    code, out, err = run_tool(capsys, tmp_path / "input", tmp_path / "output", "--model",
                              small_relative_ir, "--inference-precision", "f32",
                              "-p", "scale_source:=depth", "-p", f"cache_dir:={cache_dir}")
    assert code == 0, err
    written = read_bag(tmp_path / "output")
    assert "/tof/reference/depth/depth/image" not in written  # not taken for a camera
    depths = written["/tof/depth/image"]
    assert len(depths) == FRAMES
    for _, _, msg in depths:
        depth = np.frombuffer(msg.data, np.float32).reshape(msg.height, msg.width)
        truth = truths[msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec]
        assert np.median(np.abs(depth / truth - 1.0)) < 0.01
