"""Export models during ``colcon build`` when, and only when, DEPTH_ANYTHING_MODELS asks.

A build must never download by surprise: with the variable unset nothing here runs beyond
creating the (empty) models folder. Listing a model is the explicit request; checkpoints
come from DEPTH_ANYTHING_CHECKPOINTS (a folder holding the official file names) when set,
else from Hugging Face.

Spec grammar, comma or space separated:
``ENCODER[-metric-indoor|-metric-outdoor][@HxW][:PRECISION]``
e.g. ``vits-metric-indoor@480x640`` (HxW is the camera size; default network 518x518).
"""

from __future__ import annotations

from dataclasses import dataclass
import os
from pathlib import Path
import re
import sys

from depth_anything_ros.export.configs import ENCODERS
from depth_anything_ros.inference.metadata import METRIC_MAX_DEPTH
from depth_anything_ros.inference.sizing import DEFAULT_SIDE, network_size, parse_hw

# How the build takes a local checkpoint: the wording of the download errors it raises.
LOCAL_HINT = "put it in a folder DIR and build again with DEPTH_ANYTHING_CHECKPOINTS=DIR"

SPEC = re.compile(r"(?P<encoder>vit[sblg])(?:-metric-(?P<metric>indoor|outdoor))?"
                  r"(?:@(?P<size>\d+x\d+))?(?::(?P<precision>fp32|fp16|int8))?")


@dataclass(frozen=True)
class ModelSpec:
    encoder: str
    metric: str | None
    camera_size: tuple[int, int] | None
    precision: str

    @property
    def network_size(self) -> tuple[int, int]:
        return network_size(*self.camera_size) if self.camera_size else (DEFAULT_SIDE, DEFAULT_SIDE)

    @property
    def file_name(self) -> str:
        kind = f"metric_{self.metric}" if self.metric else "relative"
        height, width = self.network_size
        return f"{self.encoder}_{kind}_{height}x{width}_{self.precision}.xml"


def parse_specs(text: str) -> list[ModelSpec]:
    specs = []
    for token in re.split(r"[,\s]+", text.strip()):
        if not token:
            continue
        match = SPEC.fullmatch(token)
        if not match:
            raise ValueError(f"DEPTH_ANYTHING_MODELS entry {token!r} is not "
                             "ENCODER[-metric-indoor|-metric-outdoor][@HxW][:fp32|fp16|int8], "
                             "e.g. vits-metric-indoor@480x640")
        size = parse_hw(match["size"]) if match["size"] else None
        specs.append(ModelSpec(match["encoder"], match["metric"], size,
                               match["precision"] or "fp16"))
    return specs


def already_built(xml: Path, checkpoint_sha256: str) -> bool:
    if not xml.is_file() or not xml.with_suffix(".bin").is_file():
        return False
    import openvino as ov

    from depth_anything_ros.inference.engine import ModelLoadError, read_metadata
    try:
        meta = read_metadata(ov.Core().read_model(str(xml)), xml)
    except (ModelLoadError, RuntimeError):
        return False
    return meta.checkpoint_sha256 == checkpoint_sha256


def export_listed(text: str, models_dir: Path) -> list[Path]:
    """Export every listed model into ``models_dir``; skip those built from the same file."""
    from depth_anything_ros.export.checkpoint import build_model, download_checkpoint, sha256_of
    from depth_anything_ros.export.export import ExportRequest, export_model

    specs = parse_specs(text)
    local = os.environ.get("DEPTH_ANYTHING_CHECKPOINTS")
    calibration = os.environ.get("DEPTH_ANYTHING_CALIBRATION")
    written = []
    for spec in specs:
        cfg = ENCODERS[spec.encoder]
        if local:
            checkpoint = Path(local) / cfg.checkpoint_file(spec.metric)
            if not checkpoint.is_file():
                source = (f" (official file: https://huggingface.co/"
                          f"{cfg.checkpoint_repo(spec.metric)})" if cfg.public_weights else "")
                raise FileNotFoundError(f"{checkpoint} not found: DEPTH_ANYTHING_CHECKPOINTS="
                                        f"{local} must hold {checkpoint.name}{source}")
        else:
            checkpoint = download_checkpoint(spec.encoder, spec.metric, local_hint=LOCAL_HINT)
        xml = models_dir / spec.file_name
        if already_built(xml, sha256_of(checkpoint)):
            print(f"depth_anything_ros: {xml.name} is up to date")
            continue
        if spec.precision == "int8" and not calibration:
            raise ValueError(f"{spec.file_name}: int8 needs DEPTH_ANYTHING_CALIBRATION=DIR")
        loaded = build_model(spec.encoder, checkpoint,
                             METRIC_MAX_DEPTH[spec.metric] if spec.metric else None)
        request = ExportRequest(*spec.network_size, precision=spec.precision,
                                calibration=(Path(calibration),) if calibration else ())
        written.append(export_model(loaded, request, xml))
        print(f"depth_anything_ros: exported {xml}")
    return written


def export_for_install(text: str, models_dir: Path) -> None:
    """setup.py's install step: ``export_listed``, a user error ending the build in one line.

    colcon shows a setup.py traceback as the build's output, burying the one sentence the
    user has to act on (which variable, which file). A bad spec, a missing or unreadable
    checkpoint, an unreachable download and int8 without calibration are the user's to fix;
    anything else is a bug and keeps its traceback.
    """
    from depth_anything_ros.export.checkpoint import CheckpointError

    try:
        export_listed(text, models_dir)
    except (ValueError, OSError, CheckpointError) as exc:
        print(f"depth_anything_ros: error: {exc}", file=sys.stderr)
        raise SystemExit(1)
