"""Build-time export: explicit, skipping, and part of a real colcon install."""

from __future__ import annotations

from pathlib import Path
import shutil
import socket
import time

import pytest

from depth_anything_ros.export import build_hook
from depth_anything_ros.export.build_hook import (export_for_install, export_listed, ModelSpec,
                                                  parse_specs)

INDOOR_VITS = "depth_anything_v2_metric_hypersim_vits.pth"
INDOOR_VITS_URL = "https://huggingface.co/depth-anything/Depth-Anything-V2-Metric-Hypersim-Small"


def _unreachable_endpoint() -> str:
    """Return a local port nobody listens on.

    The connection is refused at once, so the offline path runs without waiting on DNS or a
    firewall and never downloads on a networked CI.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _only_error_line(output: str) -> str:
    """Return the only error line.

    The user must see one sentence to act on, not a traceback around it.
    """
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if "error:" in line]
    assert len(errors) == 1, output
    return errors[0]


def _install_error(text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Return the line setup.py's install step ends the build with, checking that it does end it."""
    with pytest.raises(SystemExit) as stopped:
        export_for_install(text, tmp_path / "models")
    assert stopped.value.code == 1
    line = _only_error_line(capsys.readouterr().err)
    assert line.startswith("depth_anything_ros: error: ")
    return line


@pytest.fixture
def offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Set up an empty Hugging Face cache and an endpoint that refuses: a machine offline."""
    from huggingface_hub import constants

    monkeypatch.delenv("DEPTH_ANYTHING_CHECKPOINTS", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", _unreachable_endpoint())


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


def test_offline_download_names_the_build_variable_and_file(offline_hub, tmp_path, capsys):
    """The export command's --checkpoint means nothing to colcon build.

    The build takes DEPTH_ANYTHING_CHECKPOINTS.
    """
    start = time.monotonic()
    line = _install_error("vits-metric-indoor@480x640", tmp_path, capsys)
    assert time.monotonic() - start < 5
    assert "cannot reach 127.0.0.1" in line
    assert "DEPTH_ANYTHING_CHECKPOINTS=DIR" in line and "--checkpoint" not in line
    assert f"Download {INDOOR_VITS} by hand from {INDOOR_VITS_URL}" in line


def test_hf_hub_offline_is_honoured_without_connecting(offline_hub, tmp_path, monkeypatch,
                                                       capsys):
    from huggingface_hub import constants

    def no_connection(*args: object, **kwargs: object) -> socket.socket:
        raise AssertionError("connected although HF_HUB_OFFLINE is set")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(socket, "create_connection", no_connection)
    line = _install_error("vits-metric-indoor", tmp_path, capsys)
    assert "HF_HUB_OFFLINE is set" in line and INDOOR_VITS in line
    assert "DEPTH_ANYTHING_CHECKPOINTS=DIR" in line


def test_giant_points_to_the_build_variable(offline_hub, tmp_path, capsys):
    line = _install_error("vitg", tmp_path, capsys)
    assert "no public weights" in line and "depth_anything_v2_vitg.pth" in line
    assert "DEPTH_ANYTHING_CHECKPOINTS=DIR" in line and "--checkpoint" not in line


def test_bad_spec_is_one_line(tmp_path, capsys):
    line = _install_error("vits-metric-kitchen", tmp_path, capsys)
    assert "DEPTH_ANYTHING_MODELS entry 'vits-metric-kitchen'" in line


def test_missing_local_checkpoint_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEPTH_ANYTHING_CHECKPOINTS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="depth_anything_v2_vitb.pth"):
        export_listed("vitb", tmp_path / "models")
    line = _install_error("vitb", tmp_path, capsys)
    assert f"DEPTH_ANYTHING_CHECKPOINTS={tmp_path} must hold depth_anything_v2_vitb.pth" in line
    assert "https://huggingface.co/depth-anything/Depth-Anything-V2-Base" in line


def test_int8_without_calibration_is_one_line(synthetic_checkpoint, tmp_path, monkeypatch,
                                              capsys):
    shutil.copy(synthetic_checkpoint, tmp_path / INDOOR_VITS)
    monkeypatch.setenv("DEPTH_ANYTHING_CHECKPOINTS", str(tmp_path))
    monkeypatch.delenv("DEPTH_ANYTHING_CALIBRATION", raising=False)
    line = _install_error("vits-metric-indoor@56x70:int8", tmp_path, capsys)
    assert "int8 needs DEPTH_ANYTHING_CALIBRATION=DIR" in line


def test_a_bug_keeps_its_traceback(tmp_path, monkeypatch):
    """Only the user's mistakes are shortened; a bug must stay debuggable."""
    def broken(text: str, models_dir: Path) -> list[Path]:
        raise KeyError("bug")

    monkeypatch.setattr(build_hook, "export_listed", broken)
    with pytest.raises(KeyError):
        export_for_install("vits", tmp_path / "models")


def test_colcon_build_offline_ends_in_one_error_line(tmp_path, monkeypatch):
    """The README's first command offline.

    colcon must end with the sentence to act on, naming the build's variable, not a setup.py
    traceback pointing at --checkpoint.
    """
    from ros_harness import colcon_build

    repo = Path(__file__).resolve().parents[1]
    build_env = {"DEPTH_ANYTHING_MODELS": "vits-metric-indoor@480x640",
                 "HF_ENDPOINT": _unreachable_endpoint(), "HF_HUB_OFFLINE": "0",
                 "HF_HUB_CACHE": str(tmp_path / "hf")}
    monkeypatch.delenv("DEPTH_ANYTHING_CHECKPOINTS", raising=False)  # colcon_build copies ours
    with pytest.raises(RuntimeError, match="colcon build failed") as failed:
        colcon_build(repo, tmp_path / "ws", timeout_s=60, build_env=build_env)
    line = _only_error_line(str(failed.value))
    assert "depth_anything_ros: error: " in line
    assert "DEPTH_ANYTHING_CHECKPOINTS=DIR" in line and "--checkpoint" not in line
    assert INDOOR_VITS in line and INDOOR_VITS_URL in line


def test_colcon_build_exports_listed_models_and_node_finds_them(synthetic_checkpoint,
                                                                tmp_path):
    """The whole build-time route.

    colcon build with DEPTH_ANYTHING_MODELS, a rebuild that skips the export, and the
    installed node starting on the default model_path.
    """
    from ros_harness import colcon_build, start_node

    repo = Path(__file__).resolve().parents[1]
    checkpoints = tmp_path / "ck"
    checkpoints.mkdir()
    shutil.copy(synthetic_checkpoint, checkpoints / "depth_anything_v2_metric_vkitti_vits.pth")
    build_env = {"DEPTH_ANYTHING_MODELS": "vits-metric-outdoor@56x70",
                 "DEPTH_ANYTHING_CHECKPOINTS": str(checkpoints)}
    workspace = tmp_path / "ws"
    env = colcon_build(repo, workspace, build_env=build_env)
    models = (workspace / "install" / "depth_anything_ros" / "share" / "depth_anything_ros"
              / "models")
    xml = models / "vits_metric_outdoor_518x644_fp16.xml"
    assert xml.is_file() and xml.with_suffix(".bin").is_file()
    stamp = xml.stat().st_mtime_ns
    colcon_build(repo, workspace, build_env=build_env)
    assert xml.stat().st_mtime_ns == stamp, "rebuild re-exported an up-to-date model"

    node = start_node((workspace, env), tmp_path / "log", [])
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


def test_da3_spec_grammar():
    """DA3 entries take the model's own name and DA3's sizing rule (480x640 -> 378x504)."""
    assert parse_specs("da3-small@480x640:int8 da3metric-large") == [
        ModelSpec("da3-small", None, (480, 640), "int8"),
        ModelSpec("da3metric-large", None, None, "fp16")]
    assert parse_specs("da3-small@480x640")[0].file_name == "da3-small_378x504_fp16.xml"
    assert parse_specs("da3mono-large")[0].file_name == "da3mono-large_504x504_fp16.xml"
    with pytest.raises(ValueError, match="da3-base, da3-small, da3metric-large, da3mono-large"):
        parse_specs("da3-small-metric-indoor")


def test_da3_exports_once_per_checkpoint(da3_checkpoint, tmp_path, monkeypatch, capsys):
    """The build exports DA3 from DEPTH_ANYTHING_CHECKPOINTS/DA3-SMALL/, then skips it.

    DA3's rule makes every camera a 504-pixel network; a 70-pixel long side keeps this
    export to seconds while running the same rule.
    """
    from depth_anything_ros.inference.engine import read_metadata
    from depth_anything_ros.inference.sizing import da3_network_size
    import openvino as ov

    checkpoints = tmp_path / "ck"
    checkpoints.mkdir()
    (checkpoints / "DA3-SMALL").symlink_to(da3_checkpoint("da3-small"), target_is_directory=True)
    monkeypatch.setenv("DEPTH_ANYTHING_CHECKPOINTS", str(checkpoints))
    monkeypatch.setattr(build_hook, "da3_network_size",
                        lambda height, width: da3_network_size(height, width, long_side=70))
    models = tmp_path / "models"
    first = export_listed("da3-small@48x64", models)
    assert [p.name for p in first] == ["da3-small_56x70_fp16.xml"]
    meta = read_metadata(ov.Core().read_model(str(first[0])), first[0])
    assert (meta.model_name, meta.input_height, meta.input_width) == ("da3-small", 56, 70)
    assert meta.depth_meaning == "relative_depth" and "confidence" in dict(meta.outputs)
    assert export_listed("da3-small@48x64", models) == []
    assert "da3-small_56x70_fp16.xml is up to date" in capsys.readouterr().out


def test_da3_missing_local_folder_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEPTH_ANYTHING_CHECKPOINTS", str(tmp_path))
    line = _install_error("da3-small", tmp_path, capsys)
    assert f"DEPTH_ANYTHING_CHECKPOINTS={tmp_path} must hold DA3-SMALL/" in line
    assert "https://huggingface.co/depth-anything/DA3-SMALL" in line


def test_da3_offline_download_names_the_build_variable(offline_hub, tmp_path, capsys):
    start = time.monotonic()
    line = _install_error("da3metric-large@480x640", tmp_path, capsys)
    assert time.monotonic() - start < 5
    assert "cannot reach 127.0.0.1" in line
    assert "https://huggingface.co/depth-anything/DA3METRIC-LARGE" in line
    assert "folder DA3METRIC-LARGE" in line and "DEPTH_ANYTHING_CHECKPOINTS=DIR" in line
    assert "--checkpoint" not in line
