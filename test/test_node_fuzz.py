"""ROS-level fuzz: thousands of malformed and valid messages against the installed node.

Two node processes, one per input transport, get a seeded random mix of every kind of
bad input the node must survive (unknown encodings, zero sizes, short steps, wrong data
lengths, oversized images, corrupt and oversized compressed data, invalid CameraInfo,
CameraInfo of another shape, stamps going backwards, stamp restarts) between valid
frames with their CameraInfo. Then the books must balance exactly:

* every valid frame is answered, in order, with the calibration it was sent with (or
  the field-of-view fallback when that calibration had another shape);
* /diagnostics counts each kind of rejected message exactly as many times as it was sent;
* the node received every image sent (reliable QoS end to end), is still running, never
  printed a traceback, and logged rejections rate-limited.

Exact counts need no message lost in transport: with reliable QoS a subscription still
overwrites its oldest unread message when its queue (input_queue_depth, QUEUE_DEPTH here)
is full. So each valid frame is a sync point: the next batch is sent only once it was
answered, which proves every image before it was taken, and a batch never holds more
images than the queue does. Raw images are checked on arrival and never reach the newest-frame
slot unless valid, so nothing is dropped there either. Corrupt compressed images can
only be found out by decoding, in the worker, so one replaced in the slot by a newer
frame before being decoded counts as dropped: for those the check is
corrupt sent == rejected compressed_corrupt + dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import random
import re
import signal
import time
from typing import Callable

from builtin_interfaces.msg import Time
import cv2
import numpy as np
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from depth_anything_ros.geometry.calibration import calibration_fits
from depth_anything_ros.geometry.intrinsics import Intrinsics
from depth_anything_ros.pipeline.messages.image_input import (check_compressed_header,
                                                              compressed_to_array, image_to_array,
                                                              ImageDecodeError, REJECT_COMPRESSED,
                                                              REJECT_DATA_LENGTH, REJECT_ENCODING,
                                                              REJECT_MAX_PIXELS, REJECT_SIZE,
                                                              REJECT_STEP)
from depth_anything_ros.pipeline.notes import (REFERENCE_REJECTIONS, REJECT_CAMERA_INFO_INVALID,
                                               REJECT_CAMERA_INFO_SIZE, REJECT_STAMP_BACKWARDS,
                                               REJECTION_KINDS)
from depth_anything_ros.pipeline.stamp_order import RESTART_AFTER_S
from depth_anything_ros.ros import diagnostics as diag
from depth_anything_ros.ros.node_log import WARN_THROTTLE_S
from ros_camera import Camera, pinhole_info
from ros_diagnostics import DiagnosticsReader, status_name
from ros_harness import Client, NodeProcess, stamp_key

SEED = 20240611
MAX_PIXELS = 20_000
QUEUE_DEPTH = 10  # the nodes' input_queue_depth
RAW_NS, COMPRESSED_NS = "/fuzz_raw", "/fuzz_compressed"
RAW_VALID_FRAMES, COMPRESSED_VALID_FRAMES = 380, 200
STARTUP_TIMEOUT_S = 60.0   # first frame: process start, model read, first compile
ANSWER_TIMEOUT_S = 20.0    # later frames (a new input size compiles once more)
OUTPUTS = (("depth/image", Image), ("depth/camera_info", CameraInfo),
           ("depth/colorized", Image), ("depth/points", PointCloud2))
# Per sync point at most this many images, the valid one included: never more than the
# node's reliable subscription queues. CameraInfo batches stay at half of it, so even
# CameraInfo the node has not taken yet from the previous batch leave room.
IMAGES_PER_BATCH = QUEUE_DEPTH
INFOS_PER_BATCH = QUEUE_DEPTH // 2
HFOV_DEG = 60.0  # the fallback_hfov_deg default
# A valid frame is stamped this far after the previous one, so the junk sent before it
# (1 ms apart, fewer than 20 messages) is stamped in between.
BATCH_SPAN_NS = 100_000_000

BASE = {(80, 60): Intrinsics(70.0, 66.0, 41.0, 28.5, 80, 60)}
BASE[(40, 30)] = BASE[(80, 60)].scaled(40, 30)
VALID_ENCODINGS = {"bgr8": 3, "rgb8": 3, "bgra8": 4, "rgba8": 4, "mono8": 1, "mono16": 2,
                   "16UC1": 2, "yuyv": 2, "uyvy": 2}
BAD_ENCODINGS = ["8UC7", "32FC1", "bayer_rggb8", "RGB8", "", "mono8 ", "jpeg", "nv12"]


def ns_time(ns: int) -> Time:
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


# --- what to send -----------------------------------------------------------------------

@dataclass
class Expected:
    """What the node must report once everything sent has been taken."""

    images: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REJECTION_KINDS, 0))
    restarts: int = 0
    # (stamp, K the republished CameraInfo must carry) of each valid frame, in order
    answers: list[tuple[tuple[int, int], tuple[float, ...]]] = field(default_factory=list)
    messages: int = 0


class Generator:
    """Seeded messages of each kind, each checked against the codec before it is sent.

    That way a generator slip cannot masquerade as a node bug.
    """

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.np_rng = np.random.default_rng(seed)

    def payload(self, size: int) -> bytes:
        return self.rng.randbytes(size)

    def valid_raw(self, width: int, height: int) -> Image:
        encoding = self.rng.choice(list(VALID_ENCODINGS))
        step = width * VALID_ENCODINGS[encoding] + self.rng.choice([0, 0, 3, 16])
        msg = Image(width=width, height=height, encoding=encoding, step=step,
                    is_bigendian=self.rng.random() < 0.5, data=self.payload(height * step))
        image_to_array(msg, MAX_PIXELS)
        return msg

    def malformed_raw(self) -> tuple[Image, str]:
        kind = self.rng.choice([REJECT_ENCODING, REJECT_SIZE, REJECT_STEP, REJECT_DATA_LENGTH,
                                REJECT_MAX_PIXELS])
        width, height = self.rng.choice([(80, 60), (40, 30), (7, 3)])
        encoding = self.rng.choice(list(VALID_ENCODINGS))
        bpp = VALID_ENCODINGS[encoding]
        step = width * bpp
        length = height * step
        if kind == REJECT_ENCODING:
            encoding = self.rng.choice(BAD_ENCODINGS)
            length = self.rng.randrange(0, 200)
        elif kind == REJECT_SIZE:
            if self.rng.random() < 0.5:
                encoding, width, step = "yuyv", 81, 162      # 4:2:2 needs an even width
                length = height * step
            else:
                width, height = self.rng.choice([(0, height), (width, 0), (0, 0)])
                length = self.rng.randrange(0, 100)
        elif kind == REJECT_STEP:
            step = self.rng.randrange(0, width * bpp)
            length = height * step
        elif kind == REJECT_DATA_LENGTH:
            length = max(0, length + self.rng.choice([-1, 1, -step, step, -length, 7]))
            if length == height * step:
                length += 1
        else:
            width, height = self.rng.choice([(400, 300), (2**31 - 1, 2), (MAX_PIXELS + 1, 1)])
            step, length = width * bpp, self.rng.randrange(0, 64)
        msg = Image(width=width, height=height, encoding=encoding, step=step,
                    data=self.payload(length))
        with pytest.raises(ImageDecodeError) as caught:
            image_to_array(msg, MAX_PIXELS)
        assert caught.value.kind == kind, (kind, str(caught.value))
        return msg, kind

    def camera_info(self, width: int, height: int
                    ) -> tuple[CameraInfo, tuple[float, ...], str | None]:
        """Return a valid CameraInfo for a ``width`` x ``height`` image.

        The CameraInfo is of its own size, a scaled one, (counted, fallback used) another
        shape, or (a warning, not a rejection: used unrectified) its own size with a lens
        model rectification does not know. Returns it, the K the node must republish, and
        the rejection reason the frame adds, if any.
        """
        base = BASE[(width, height)]
        choice = self.rng.choice(["same", "same", "scaled", "scaled", "mismatch", "lens"])
        if choice == "mismatch":
            cal_w, cal_h = self.rng.choice([(width, width), (width + 20, height),
                                            (height, width), (width * 2, height * 3)])
            cal = Intrinsics(0.9 * cal_w, 0.9 * cal_w, cal_w / 2, cal_h / 2, cal_w, cal_h)
            assert not calibration_fits(cal, width, height)
            expected = Intrinsics.from_fov(width, height, HFOV_DEG)
        else:
            factor = self.rng.choice([2, 8, 0.5]) if choice == "scaled" else 1
            cal = base.scaled(round(width * factor), round(height * factor))
            assert calibration_fits(cal, width, height)
            expected = base
        info = CameraInfo(width=cal.width, height=cal.height, k=cal.k_matrix(),
                          distortion_model="plumb_bob", d=[0.0] * 5)
        if choice == "lens":
            info.distortion_model, info.d = "fisheye_v9", [0.1, -0.02, 0.0, 0.0]
        kind = REJECT_CAMERA_INFO_SIZE if choice == "mismatch" else None
        return info, expected.k_matrix(), kind

    def invalid_camera_info(self) -> CameraInfo:
        k = list(BASE[(80, 60)].k_matrix())
        info = CameraInfo(width=80, height=60, distortion_model="plumb_bob", d=[0.0] * 5)
        breakage = self.rng.choice(["zero", "nan", "inf", "negative", "width", "binning"])
        if breakage == "zero":
            k = [0.0] * 9
        elif breakage == "nan":
            k[self.rng.choice([0, 2, 4, 5])] = float("nan")
        elif breakage == "inf":
            k[self.rng.choice([0, 4])] = float("inf")
        elif breakage == "negative":
            k[4] = -k[4]
        elif breakage == "width":
            info.width = 0
        else:
            info.binning_x = 200  # bins 80 pixels into none
        info.k = k
        return info

    def compressed(self, kind: str) -> CompressedImage:
        if kind == "valid":
            pixels = self.np_rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
            ext = self.rng.choice([".png", ".jpg"])
            data = cv2.imencode(ext, pixels)[1].tobytes()
            msg = CompressedImage(format=ext[1:], data=data)
            compressed_to_array(msg, MAX_PIXELS)
            return msg
        if kind == REJECT_MAX_PIXELS:
            side = self.rng.choice([200, 1000, 65535]).to_bytes(2, "big")
            data = self.rng.choice([
                b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + side * 2 + side * 2 + self.payload(30),
                b"\xff\xd8\xff\xc0\x00\x11\x08" + side + side + self.payload(40)])
            msg = CompressedImage(format="png", data=data)
            with pytest.raises(ImageDecodeError) as caught:
                check_compressed_header(msg, MAX_PIXELS)
            assert caught.value.kind == REJECT_MAX_PIXELS
            return msg
        while True:  # corrupt: must pass the header check and fail decoding
            valid = cv2.imencode(".png", self.np_rng.integers(0, 256, (60, 80, 3), np.uint8))[1]
            data = self.rng.choice([
                b"", b"\x00" + self.payload(self.rng.randrange(1, 400)),
                valid.tobytes()[:self.rng.randrange(8, 200)],
                b"\xff\xd8" + self.payload(self.rng.randrange(0, 200))])
            msg = CompressedImage(format="jpeg", data=data)
            try:
                check_compressed_header(msg, MAX_PIXELS)
                compressed_to_array(msg, MAX_PIXELS)
            except ImageDecodeError as exc:
                if exc.kind == REJECT_COMPRESSED:
                    return msg


# --- the ROS side -----------------------------------------------------------------------

class Target:
    """Publishers into one node's namespace and what comes back from it."""

    def __init__(self, client: Client, namespace: str, compressed: bool,
                 status: str | None = None) -> None:
        self.client = client
        self.namespace = namespace
        # The node's /diagnostics status for this camera.
        self.status_name = status or status_name(namespace)
        # Deep reliable history on our side: the writer keeps every sample until the
        # node's reader has it.
        self.camera = Camera(client, namespace, compressed=compressed,
                             frame_id="fuzz_optical_frame", history=1000)
        self.outputs: dict[str, list] = {topic: [] for topic, _ in OUTPUTS}
        for topic, msg_type in OUTPUTS:
            client.node.create_subscription(
                msg_type, f"{namespace}/{topic}", self.outputs[topic].append,
                QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
        self.clock_ns = 1_000 * 1_000_000_000
        self.reference_ns = 0    # the node's newest accepted stamp, as the rules move it
        self.expected = Expected()

    def tick(self) -> int:
        self.clock_ns += 1_000_000
        return self.clock_ns

    def send_image(self, msg, stamp_ns: int) -> None:
        self.camera.send_image(msg, ns_time(stamp_ns))
        self.expected.images += 1
        self.expected.messages += 1

    def send_info(self, msg: CameraInfo, stamp_ns: int) -> None:
        self.camera.send_info(msg, ns_time(stamp_ns))
        self.expected.messages += 1

    def reject(self, kind: str) -> None:
        self.expected.rejected[kind] += 1

    def accept_stamp(self, stamp_ns: int) -> None:
        if stamp_ns:
            self.reference_ns = stamp_ns

    def backwards_stamp(self, rng: random.Random) -> int:
        return self.reference_ns - rng.randrange(1_000_000, int(0.9e9))

    def wait_answers(self, count: int, timeout_s: float) -> None:
        answered = self.client.spin_until(
            lambda: min(len(v) for v in self.outputs.values()) >= count, timeout_s)
        assert answered, (f"{self.namespace}: valid frame {count} not answered within "
                          f"{timeout_s} s; outputs {[len(v) for v in self.outputs.values()]}")


def send_calibrations(target: Target, gen: Generator, width: int, height: int,
                      stamp: int) -> tuple[tuple[float, ...], bool]:
    """Send the frame's CameraInfo, first in its batch so it is taken before its image.

    Then send a few invalid ones; returns the valid one's K and the rejection reason its
    frame adds, if any.
    """
    info, k, kind = gen.camera_info(width, height)
    target.send_info(info, stamp)
    for _ in range(gen.rng.randrange(0, INFOS_PER_BATCH)):
        target.send_info(gen.invalid_camera_info(), target.tick())
        target.reject(REJECT_CAMERA_INFO_INVALID)
    return k, kind


def run_raw(target: Target, gen: Generator, frames: int,
            after_each: Callable[[], None] = lambda: None) -> None:
    rng = gen.rng
    restarts_at = set(rng.sample(range(10, frames), 3))
    for index in range(frames):
        width, height = rng.choice([(80, 60), (80, 60), (40, 30)])
        if index in restarts_at:        # a rosbag loop: jump back past the restart limit
            stamp = target.reference_ns - int((RESTART_AFTER_S + 4.0) * 1e9)
            target.clock_ns = stamp
            target.expected.restarts += 1
        elif rng.random() < 0.03:       # unstamped camera
            stamp = 0
        else:
            stamp = target.clock_ns + BATCH_SPAN_NS
        k, calibration_kind = send_calibrations(target, gen, width, height, stamp)
        backwards_slot = rng.randrange(0, IMAGES_PER_BATCH) if rng.random() < 0.6 else -1
        for slot in range(rng.randrange(3, IMAGES_PER_BATCH)):
            if slot == backwards_slot and target.reference_ns:
                target.send_image(gen.valid_raw(80, 60), target.backwards_stamp(rng))
                target.reject(REJECT_STAMP_BACKWARDS)
            else:
                msg, kind = gen.malformed_raw()
                target.send_image(msg, target.tick())
                target.reject(kind)
        target.send_image(gen.valid_raw(width, height), stamp)
        target.accept_stamp(stamp)
        target.clock_ns = max(target.clock_ns, stamp)
        if calibration_kind is not None:
            target.reject(calibration_kind)
        target.expected.answers.append(((stamp // 10**9, stamp % 10**9), k))
        target.wait_answers(index + 1, STARTUP_TIMEOUT_S if index == 0 else ANSWER_TIMEOUT_S)
        after_each()


def run_compressed(target: Target, gen: Generator, frames: int) -> None:
    rng = gen.rng
    for index in range(frames):
        stamp = target.clock_ns + BATCH_SPAN_NS
        k, calibration_kind = send_calibrations(target, gen, 80, 60, stamp)
        backwards_slot = rng.randrange(0, IMAGES_PER_BATCH) if rng.random() < 0.5 else -1
        for slot in range(rng.randrange(2, IMAGES_PER_BATCH)):
            if slot == backwards_slot and target.reference_ns:
                target.send_image(gen.compressed("valid"), target.backwards_stamp(rng))
                target.reject(REJECT_STAMP_BACKWARDS)
            elif rng.random() < 0.2:
                target.send_image(gen.compressed(REJECT_MAX_PIXELS), target.tick())
                target.reject(REJECT_MAX_PIXELS)
            else:
                # Passes the arrival checks, so it moves the stamp reference.
                corrupt_stamp = target.tick()
                target.send_image(gen.compressed(REJECT_COMPRESSED), corrupt_stamp)
                target.accept_stamp(corrupt_stamp)
                target.reject(REJECT_COMPRESSED)
        target.send_image(gen.compressed("valid"), stamp)
        target.accept_stamp(stamp)
        target.clock_ns = stamp
        if calibration_kind is not None:
            target.reject(calibration_kind)
        target.expected.answers.append(((stamp // 10**9, stamp % 10**9), k))
        target.wait_answers(index + 1, STARTUP_TIMEOUT_S if index == 0 else ANSWER_TIMEOUT_S)


# --- the test -----------------------------------------------------------------------------

@dataclass
class Counters:
    received: int
    published: int
    dropped: int
    skipped: int
    failed: int
    restarts: int
    rejected: dict[str, int]

    @classmethod
    def of(cls, values: dict[str, str]) -> "Counters":
        """Read a camera's diagnostics status (its key-value pairs)."""
        return cls(*(int(values[key]) for key in (
            diag.KEY_RECEIVED, diag.KEY_PUBLISHED, diag.KEY_DROPPED, diag.KEY_SKIPPED,
            diag.KEY_FAILED, diag.KEY_STAMP_RESTARTS)),
            {kind: int(values[diag.rejected_key(kind)]) for kind in REJECTION_KINDS})

    def minus(self, base: "Counters") -> "Counters":
        return Counters(self.received - base.received, self.published - base.published,
                        self.dropped - base.dropped, self.skipped - base.skipped,
                        self.failed - base.failed, self.restarts - base.restarts,
                        {k: v - base.rejected[k] for k, v in self.rejected.items()})

    def image_rejections(self) -> int:
        return sum(v for k, v in self.rejected.items()
                   if k not in (REJECT_CAMERA_INFO_INVALID, REJECT_CAMERA_INFO_SIZE))

    def idle(self) -> bool:
        """Every received image is accounted for: nothing is pending in the node."""
        return self.received == (self.published + self.dropped + self.skipped + self.failed
                                 + self.image_rejections())


def wait_counters(diagnostics: DiagnosticsReader, name: str,
                  done: Callable[[Counters], bool]) -> Counters:
    """Return the counters of the first report after now for which ``done`` holds."""
    return Counters.of(diagnostics.wait(name, lambda values: done(Counters.of(values))))


# The same fuzz through a V2 metric IR and a Depth Anything 3 one (DA3-Small: relative depth
# with a confidence; relative_scale gives it the metric outputs the checks read).
FUZZ_MODELS = {"v2_metric": ("small_metric_ir", []),
               "da3_small": ("da3_small_ir", ["-p", "relative_scale:=1.0"])}


@pytest.fixture(scope="module", params=sorted(FUZZ_MODELS))
def fuzz_nodes(launch_node, request):
    fixture, extra = FUZZ_MODELS[request.param]
    model = request.getfixturevalue(fixture)
    procs: dict[str, NodeProcess] = {}
    for namespace, transport in ((RAW_NS, "raw"), (COMPRESSED_NS, "compressed")):
        procs[namespace] = launch_node(f"{namespace.strip('/')}_{request.param}", [
            *extra, "-r", f"__ns:={namespace}", "-p", f"model_path:={model}",
            "-p", "input_qos:=reliable", "-p", f"input_queue_depth:={QUEUE_DEPTH}",
            "-p", f"input_transport:={transport}", "-p", f"max_pixels:={MAX_PIXELS}",
            "-p", "diagnostics_period:=0.2"])
    client = Client("fuzz_client")
    yield procs, client
    for proc in procs.values():
        proc.stop(signal.SIGKILL, 5.0)
    client.close()


def warm_up(target: Target, diagnostics: DiagnosticsReader, make_valid) -> Counters:
    """Send unstamped valid frames until one comes back on every output.

    All of the node's publishers have then matched ours. Then wait for the node to go idle;
    the counters then are the baseline the fuzz is measured from.
    """
    client = target.client
    assert client.spin_until(target.camera.connected, STARTUP_TIMEOUT_S), (
        f"{target.namespace} never subscribed")
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not all(target.outputs.values()):
        assert time.monotonic() < deadline, {t: len(v) for t, v in target.outputs.items()}
        target.send_image(make_valid(), 0)
        client.spin_until(lambda: all(target.outputs.values()), 3.0)
    base = wait_counters(diagnostics, target.status_name,
                         lambda c: c.received == target.expected.images and c.idle())
    for answers in target.outputs.values():
        answers.clear()
    target.expected = Expected()
    return base


def check(target: Target, proc: NodeProcess, diagnostics: DiagnosticsReader, base: Counters,
          compressed: bool) -> Counters:
    expected = target.expected
    final = wait_counters(
        diagnostics, target.status_name,
        lambda c: c.received - base.received == expected.images and c.idle()).minus(base)
    proc.assert_running()
    assert final.received == expected.images  # nothing lost in transport
    assert (final.skipped, final.failed) == (0, 0)
    assert final.published == len(expected.answers)
    assert final.restarts == expected.restarts
    if compressed:
        # A corrupt frame replaced before the worker decoded it was never looked at.
        corrupt = expected.rejected[REJECT_COMPRESSED]
        assert final.rejected[REJECT_COMPRESSED] + final.dropped == corrupt
        assert {k: v for k, v in final.rejected.items() if k != REJECT_COMPRESSED} == {
            k: v for k, v in expected.rejected.items() if k != REJECT_COMPRESSED}
    else:
        assert final.dropped == 0
        assert final.rejected == expected.rejected
    # Every valid frame answered, in order, on every output, with its own calibration.
    infos = target.outputs["depth/camera_info"]
    assert [stamp_key(m.header) for m in infos] == [stamp for stamp, _ in expected.answers]
    for topic, answers in target.outputs.items():
        assert [stamp_key(m.header) for m in answers] == [s for s, _ in expected.answers], topic
    for msg, (_, k) in zip(infos, expected.answers):
        np.testing.assert_allclose(msg.k, k, rtol=1e-9, atol=1e-9)
    return final


def rejection_log_lines(output: str) -> int:
    """Count the node's rate-limited rejection lines, one pattern per reason's wording.

    A CameraInfo whose lens model cannot be applied ('not rectifying') is a warning, not
    a rejection (the frame is processed), so neither its line nor its kind is counted.
    """
    return len(re.findall(r"\] \[\S+\]: (ignoring image|ignoring camera_info|skipping image)",
                          output))


def test_thousands_of_malformed_and_valid_messages(fuzz_nodes):
    procs, client = fuzz_nodes
    diagnostics = DiagnosticsReader(client)
    raw = Target(client, RAW_NS, compressed=False)
    compressed = Target(client, COMPRESSED_NS, compressed=True)
    # The warm-up takes as many frames as start-up needs; its own generator keeps the
    # fuzz sequence the same in every run.
    warm = Generator(SEED + 1)
    raw_base = warm_up(raw, diagnostics, lambda: warm.valid_raw(80, 60))
    compressed_base = warm_up(compressed, diagnostics, lambda: warm.compressed("valid"))
    gen = Generator(SEED)

    started = time.monotonic()
    run_raw(raw, gen, RAW_VALID_FRAMES)
    run_compressed(compressed, gen, COMPRESSED_VALID_FRAMES)
    raw_final = check(raw, procs[RAW_NS], diagnostics, raw_base, compressed=False)
    compressed_final = check(compressed, procs[COMPRESSED_NS], diagnostics, compressed_base,
                             compressed=True)
    elapsed = time.monotonic() - started

    sent = raw.expected.messages + compressed.expected.messages
    assert sent >= 5000, sent
    # Every kind of fault was exercised, on top of the valid frames (metric references
    # have their own fuzz in test_node_alignment: this node runs without scale_source).
    for target in (raw, compressed):
        exercised = {k for k, n in target.expected.rejected.items() if n}
        assert exercised == set(REJECTION_KINDS) - set(REFERENCE_REJECTIONS) - (
            {REJECT_COMPRESSED} if target is raw else
            {REJECT_ENCODING, REJECT_SIZE, REJECT_STEP, REJECT_DATA_LENGTH}), exercised
    assert raw.expected.restarts == 3
    for target, proc, final in ((raw, procs[RAW_NS], raw_final),
                                (compressed, procs[COMPRESSED_NS], compressed_final)):
        output = proc.output()
        assert "Traceback" not in output
        # Rate-limited: per reason at most one line every WARN_THROTTLE_S.
        kinds = sum(1 for n in final.rejected.values() if n)
        assert kinds <= rejection_log_lines(output) <= kinds * (elapsed / WARN_THROTTLE_S + 2)
        proc.stop_cleanly(signal.SIGINT)
    print(f"fuzz: {sent} messages ({raw.expected.messages} raw, "
          f"{compressed.expected.messages} compressed) in {elapsed:.1f} s; "
          f"raw rejected {raw_final.rejected}; compressed rejected {compressed_final.rejected}, "
          f"dropped {compressed_final.dropped}")


MULTI_NS = "/fuzz_multi"
MULTI_FUZZED_FRAMES = 100


def test_fuzz_sent_to_one_camera_leaves_the_other_complete_and_in_order(
        launch_node, small_metric_ir):
    """One node, two cameras: the raw fuzz on one, a steady clean stream on the other.

    The clean camera sends one valid frame after each fuzz batch and waits for it, so
    every one of its frames must come back, in order, and its counters must show
    nothing but those frames, whatever the other camera was sent.
    """
    proc = launch_node("fuzz_multi", [
        "-r", f"__ns:={MULTI_NS}", "-p", f"model_path:={small_metric_ir}",
        "-p", "input_qos:=reliable", "-p", f"input_queue_depth:={QUEUE_DEPTH}",
        "-p", f"max_pixels:={MAX_PIXELS}", "-p", "diagnostics_period:=0.2",
        "-p", "cameras:=[fuzzed, clean]"])
    client = Client("fuzz_multi_client")
    try:
        diagnostics = DiagnosticsReader(client)
        fuzzed = Target(client, f"{MULTI_NS}/fuzzed", False, status_name(MULTI_NS, "fuzzed"))
        clean = Target(client, f"{MULTI_NS}/clean", False, status_name(MULTI_NS, "clean"))
        warm = Generator(SEED + 1)
        bases = [warm_up(t, diagnostics, lambda: warm.valid_raw(80, 60))
                 for t in (fuzzed, clean)]
        clean_gen = Generator(SEED + 3)
        calibration = BASE[(80, 60)]

        def clean_frame() -> None:
            stamp = clean.clock_ns + BATCH_SPAN_NS
            clean.send_info(pinhole_info(60, 80, calibration.k_matrix()), stamp)
            clean.send_image(clean_gen.valid_raw(80, 60), stamp)
            clean.clock_ns = stamp
            clean.expected.answers.append(((stamp // 10**9, stamp % 10**9),
                                           calibration.k_matrix()))
            clean.wait_answers(len(clean.expected.answers), ANSWER_TIMEOUT_S)

        run_raw(fuzzed, Generator(SEED + 2), MULTI_FUZZED_FRAMES, after_each=clean_frame)
        check(fuzzed, proc, diagnostics, bases[0], compressed=False)
        final = check(clean, proc, diagnostics, bases[1], compressed=False)
        assert final.published == final.received == MULTI_FUZZED_FRAMES
        assert not any(final.rejected.values()) and final.restarts == 0
        proc.stop_cleanly(signal.SIGINT)
    finally:
        client.close()
        proc.stop(signal.SIGKILL, 5.0)
