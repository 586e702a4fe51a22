"""Build-time export: explicit, skipping, and part of a real colcon install."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from depth_anything_ros.model.build_hook import ModelSpec, export_listed, parse_specs


def test_spec_grammar():
    assert parse_specs("vits-metric-indoor@480x640, vitb:fp32") == [
        ModelSpec("vits", "indoor", (480, 640), "fp16"), ModelSpec("vitb", None, None, "fp32")]
    assert parse_specs("vits-metric-indoor@480x640")[0].file_name == \
        "vits_metric_indoor_518x686_fp16.xml"
    with pytest.raises(ValueError, match="e.g. vits-metric-indoor@480x640"):
        parse_specs("vits-metric-kitchen")


def test_exports_once_per_checkpoint(synthetic_checkpoint, tmp_path, monkeypatch, capsys):
    checkpoints = tmp_path / "ck"
    checkpoints.mkdir()
    shutil.copy(synthetic_checkpoint, checkpoints / "depth_anything_v2_metric_hypersim_vits.pth")
    monkeypatch.setenv("DEPTH_ANYTHING_CHECKPOINTS", str(checkpoints))
    models = tmp_path / "models"
    first = export_listed("vits-metric-indoor@56x70", models)
    assert [p.name for p in first] == ["vits_metric_indoor_518x644_fp16.xml"]
    assert export_listed("vits-metric-indoor@56x70", models) == []
    assert "up to date" in capsys.readouterr().out


def test_missing_local_checkpoint_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("DEPTH_ANYTHING_CHECKPOINTS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="depth_anything_v2_vitb.pth"):
        export_listed("vitb", tmp_path / "models")


def test_colcon_build_exports_listed_models_and_node_finds_them(synthetic_checkpoint,
                                                                 tmp_path):
    """The whole build-time route: colcon build with DEPTH_ANYTHING_MODELS, a rebuild that
    skips the export, and the installed node starting on the default model_path."""
    from ros_harness import colcon_build, private_domain_id, start_node

    repo = Path(__file__).resolve().parents[1]
    checkpoints = tmp_path / "ck"
    checkpoints.mkdir()
    shutil.copy(synthetic_checkpoint, checkpoints / "depth_anything_v2_metric_vkitti_vits.pth")
    build_env = {"DEPTH_ANYTHING_MODELS": "vits-metric-outdoor@56x70",
                 "DEPTH_ANYTHING_CHECKPOINTS": str(checkpoints)}
    workspace = tmp_path / "ws"
    env = colcon_build(repo, workspace, build_env=build_env)
    models = workspace / "install" / "depth_anything_ros" / "share" / "depth_anything_ros" / "models"
    xml = models / "vits_metric_outdoor_518x644_fp16.xml"
    assert xml.is_file() and xml.with_suffix(".bin").is_file()
    stamp = xml.stat().st_mtime_ns
    colcon_build(repo, workspace, build_env=build_env)
    assert xml.stat().st_mtime_ns == stamp, "rebuild re-exported an up-to-date model"

    node = start_node(env, workspace, tmp_path / "log", private_domain_id(),
                      ["-p", f"cache_dir:={tmp_path / 'cache'}"])
    try:
        deadline = time.monotonic() + 60
        while "vits metric model" not in node.output() and time.monotonic() < deadline:
            assert node.popen.poll() is None, node.output()
            time.sleep(0.2)
        assert ("vits metric model vits_metric_outdoor_518x644_fp16.xml (the only model in "
                f"{xml.parent})") in node.output()
        assert "network 518x644" in node.output()
    finally:
        rc, _ = node.stop()
    assert rc == 0, node.output()
