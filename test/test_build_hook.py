"""Build-time export: explicit, skipping, and part of a real colcon install."""

from __future__ import annotations

import shutil

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
