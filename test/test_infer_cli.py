"""The standalone CLI writes what the engine computes."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import yaml

from scenes import scene


def test_cli_writes_depth_colour_and_cloud(small_metric_ir, tmp_path, reference_engine):
    image = scene(3, 120, 160)
    cv2.imwrite(str(tmp_path / "in.png"), image)
    out = {name: tmp_path / name for name in ("depth.npy", "depth.png", "cloud.ply")}
    result = subprocess.run(
        [sys.executable, "-m", "depth_anything_ros.cli.infer", "--model", str(small_metric_ir),
         "--image", str(tmp_path / "in.png"), "--depth-npy", str(out["depth.npy"]),
         "--output", str(out["depth.png"]), "--ply", str(out["cloud.ply"]), "--fov", "70",
         "--keep-flying-pixels", "--inference-precision", "f32"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    depth = np.load(out["depth.npy"])
    expected = reference_engine(small_metric_ir).infer(image)
    assert depth.shape == (120, 160) and depth.dtype == np.float32
    np.testing.assert_allclose(depth, expected, rtol=1e-5)
    assert cv2.imread(str(out["depth.png"])).shape == (120, 160, 3)
    ply = out["cloud.ply"].read_bytes()
    header, _, body = ply.partition(b"end_header\n")
    assert b"element vertex 19200" in header and len(body) == 19200 * 15
    vertices = np.frombuffer(body, dtype=[("xyz", "<f4", 3), ("rgb", "u1", 3)])
    np.testing.assert_allclose(vertices["xyz"][:, 2], depth.ravel(), rtol=1e-6)
    np.testing.assert_array_equal(vertices["rgb"], image.reshape(-1, 3)[:, ::-1])


def test_cli_reports_missing_model(tmp_path):
    cv2.imwrite(str(tmp_path / "in.png"), scene(0, 120, 160))
    result = subprocess.run(
        [sys.executable, "-m", "depth_anything_ros.cli.infer", "--model",
         str(tmp_path / "none.xml"), "--image", str(tmp_path / "in.png")],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "depth_anything_export" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_rectifies_a_camera_calibration_yaml(small_metric_ir, tmp_path, reference_engine):
    """An ost.yaml as camera_calibration writes it: the CLI rectifies like the node."""
    image = scene(4, 120, 160)
    cv2.imwrite(str(tmp_path / "in.png"), image)
    k = [140.0, 0.0, 81.0, 0.0, 132.0, 58.5, 0.0, 0.0, 1.0]
    d = [-0.3, 0.1, 0.001, -0.0015, 0.0]
    p = [150.0, 0.0, 80.0, 0.0, 0.0, 150.0, 60.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    (tmp_path / "ost.yaml").write_text(yaml.safe_dump({
        "image_width": 160, "image_height": 120, "camera_name": "front",
        "camera_matrix": {"rows": 3, "cols": 3, "data": k},
        "distortion_model": "plumb_bob",
        "distortion_coefficients": {"rows": 1, "cols": 5, "data": d},
        "rectification_matrix": {"rows": 3, "cols": 3, "data": [1, 0, 0, 0, 1, 0, 0, 0, 1]},
        "projection_matrix": {"rows": 3, "cols": 4, "data": p}}))
    result = subprocess.run(
        [sys.executable, "-m", "depth_anything_ros.cli.infer", "--model", str(small_metric_ir),
         "--image", str(tmp_path / "in.png"), "--camera-info", str(tmp_path / "ost.yaml"),
         "--depth-npy", str(tmp_path / "depth.npy"), "--inference-precision", "f32"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    map1, map2 = cv2.initUndistortRectifyMap(
        np.reshape(k, (3, 3)), np.array(d), np.eye(3), np.reshape(p, (3, 4))[:, :3],
        (160, 120), cv2.CV_32FC1)
    expected = reference_engine(small_metric_ir).infer(
        cv2.remap(image, map1, map2, cv2.INTER_LINEAR))
    depth = np.load(tmp_path / "depth.npy")
    assert np.median(np.abs(depth - expected) / expected) < 0.01
    broken = tmp_path / "broken.yaml"
    broken.write_text("image_width: 160\n")
    result = subprocess.run(
        [sys.executable, "-m", "depth_anything_ros.cli.infer", "--model", str(small_metric_ir),
         "--image", str(tmp_path / "in.png"), "--camera-info", str(broken)],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "image_height" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_aligns_a_relative_model_to_a_reference_depth(small_relative_ir, tmp_path,
                                                          reference_engine):
    """A 16-bit PNG in millimetres made from the model's own output by a known map.

    The CLI must print that map and write depth = 1 / (s * output + t); a .npy reference
    in metres gives the same.
    """
    image = scene(6, 120, 160)
    cv2.imwrite(str(tmp_path / "in.png"), image)
    relative = reference_engine(small_relative_ir).infer(image).astype(np.float64)
    scale, shift = 0.3, 0.04
    truth = 1.0 / (scale * relative + shift)
    chosen = np.random.default_rng(2).random(truth.shape) < 0.05
    millimetres = np.where(chosen, np.round(truth * 1000.0), 0).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "ref.png"), millimetres)
    np.save(tmp_path / "ref.npy", np.where(chosen, truth, np.nan).astype(np.float32))
    for reference in ("ref.png", "ref.npy"):
        result = subprocess.run(
            [sys.executable, "-m", "depth_anything_ros.cli.infer", "--model",
             str(small_relative_ir), "--image", str(tmp_path / "in.png"), "--reference-depth",
             str(tmp_path / reference), "--depth-npy", str(tmp_path / "depth.npy"),
             "--output", str(tmp_path / "colour.png"), "--inference-precision", "f32"],
            capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        line = next(t for t in result.stdout.splitlines() if t.startswith("aligned to"))
        fitted = [float(v) for v in line.split("= ")[1].split(";")[0].replace(
            "* output +", "").split()]
        assert abs(fitted[0] / scale - 1) < 0.01 and abs(fitted[1] - shift) < 0.01 * shift + 1e-3
        depth = np.load(tmp_path / "depth.npy")
        assert np.median(np.abs(depth / truth - 1.0)) < 0.005, reference
    flat = tmp_path / "flat.png"
    cv2.imwrite(str(flat), np.zeros((120, 160), np.uint16))
    result = subprocess.run(
        [sys.executable, "-m", "depth_anything_ros.cli.infer", "--model", str(small_relative_ir),
         "--image", str(tmp_path / "in.png"), "--reference-depth", str(flat)],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "did not align" in result.stderr
    assert "Traceback" not in result.stderr
