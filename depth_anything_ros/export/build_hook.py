"""Export models during ``colcon build`` when, and only when, DEPTH_ANYTHING_MODELS asks.

A build must never download by surprise: with the variable unset nothing here runs beyond
creating the (empty) models folder. Listing a model is the explicit request; checkpoints
come from DEPTH_ANYTHING_CHECKPOINTS (a folder holding the official file names) when set,
else from Hugging Face.

Spec grammar, comma or space separated:
``ENCODER[-metric-indoor|-metric-outdoor][@HxW][:PRECISION]`` for V2, e.g.
``vits-metric-indoor@480x640`` (HxW is the camera size; default network 518x518), and
``DA3_MODEL[@HxW][:PRECISION]`` for Depth Anything 3, e.g. ``da3-small@480x640`` (network
by DA3's rule, 480x640 -> 378x504; default 504x504). A DA3 checkpoint is the Hugging Face
folder, found in DEPTH_ANYTHING_CHECKPOINTS under the repository's name (``DA3-SMALL/``).
"""

from __future__ import annotations

from dataclasses import dataclass
import os
from pathlib import Path
import re
import sys
from typing import TYPE_CHECKING

from depth_anything_ros.export.configs import ENCODERS
from depth_anything_ros.export.da3_models import DA3_MODELS
from depth_anything_ros.inference.metadata import METRIC_MAX_DEPTH
from depth_anything_ros.inference.sizing import (DA3_LONG_SIDE, da3_network_size, DEFAULT_SIDE,
                                                 network_size, parse_hw)

if TYPE_CHECKING:
    from depth_anything_ros.export.checkpoint import LoadedModel

# How the build takes a local checkpoint: the wording of the download errors it raises.
LOCAL_HINT = "put it in a folder DIR and build again with DEPTH_ANYTHING_CHECKPOINTS=DIR"

_DA3_NAMES = "|".join(re.escape(name) for name in sorted(DA3_MODELS, key=len, reverse=True))
SPEC = re.compile(rf"(?:(?P<encoder>vit[sblg])(?:-metric-(?P<metric>indoor|outdoor))?"
                  rf"|(?P<da3>{_DA3_NAMES}))"
                  r"(?:@(?P<size>\d+x\d+))?(?::(?P<precision>fp32|fp16|int8))?")


@dataclass(frozen=True)
class ModelSpec:
    model: str                        # a V2 encoder (vits...) or a DA3 model name
    metric: str | None                # V2's metric head; None for relative V2 and for DA3
    camera_size: tuple[int, int] | None
    precision: str

    @property
    def is_da3(self) -> bool:
        return self.model in DA3_MODELS

    @property
    def network_size(self) -> tuple[int, int]:
        if self.is_da3:
            return (da3_network_size(*self.camera_size) if self.camera_size
                    else (DA3_LONG_SIDE, DA3_LONG_SIDE))
        return network_size(*self.camera_size) if self.camera_size else (DEFAULT_SIDE, DEFAULT_SIDE)

    @property
    def file_name(self) -> str:
        height, width = self.network_size
        if self.is_da3:
            return f"{self.model}_{height}x{width}_{self.precision}.xml"
        kind = f"metric_{self.metric}" if self.metric else "relative"
        return f"{self.model}_{kind}_{height}x{width}_{self.precision}.xml"


def parse_specs(text: str) -> list[ModelSpec]:
    specs = []
    for token in re.split(r"[,\s]+", text.strip()):
        if not token:
            continue
        match = SPEC.fullmatch(token)
        if not match:
            raise ValueError(f"DEPTH_ANYTHING_MODELS entry {token!r} is not "
                             "ENCODER[-metric-indoor|-metric-outdoor][@HxW][:fp32|fp16|int8], "
                             "e.g. vits-metric-indoor@480x640, nor DA3_MODEL[@HxW][:PRECISION] "
                             f"with DA3_MODEL one of {', '.join(sorted(DA3_MODELS))}, "
                             "e.g. da3-small@480x640")
        size = parse_hw(match["size"]) if match["size"] else None
        specs.append(ModelSpec(match["encoder"] or match["da3"], match["metric"], size,
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
    from depth_anything_ros.export.export import ExportRequest, export_model

    specs = parse_specs(text)
    local = os.environ.get("DEPTH_ANYTHING_CHECKPOINTS")
    calibration = os.environ.get("DEPTH_ANYTHING_CALIBRATION")
    written = []
    for spec in specs:
        source = _DA3Source(spec, local) if spec.is_da3 else _V2Source(spec, local)
        xml = models_dir / spec.file_name
        if already_built(xml, source.sha256()):
            print(f"depth_anything_ros: {xml.name} is up to date")
            continue
        if spec.precision == "int8" and not calibration:
            raise ValueError(f"{spec.file_name}: int8 needs DEPTH_ANYTHING_CALIBRATION=DIR")
        request = ExportRequest(*spec.network_size, precision=spec.precision,
                                calibration=(Path(calibration),) if calibration else ())
        written.append(export_model(source.load(), request, xml))
        print(f"depth_anything_ros: exported {xml}")
    return written


class _Source:
    """Where one listed model's checkpoint is; ``checkpoint`` is the file that names the build."""

    checkpoint: Path

    def sha256(self) -> str:
        from depth_anything_ros.export.checkpoint import sha256_of

        return sha256_of(self.checkpoint)


class _V2Source(_Source):
    """A V2 checkpoint: ``DEPTH_ANYTHING_CHECKPOINTS/<official .pth name>`` or downloaded."""

    def __init__(self, spec: ModelSpec, local: str | None) -> None:
        from depth_anything_ros.export.checkpoint import download_checkpoint

        self.spec = spec
        cfg = ENCODERS[spec.model]
        if not local:
            self.checkpoint = download_checkpoint(spec.model, spec.metric, local_hint=LOCAL_HINT)
            return
        self.checkpoint = Path(local) / cfg.checkpoint_file(spec.metric)
        if not self.checkpoint.is_file():
            official = (f" (official file: https://huggingface.co/"
                        f"{cfg.checkpoint_repo(spec.metric)})" if cfg.public_weights else "")
            raise FileNotFoundError(f"{self.checkpoint} not found: DEPTH_ANYTHING_CHECKPOINTS="
                                    f"{local} must hold {self.checkpoint.name}{official}")

    def load(self) -> "LoadedModel":
        from depth_anything_ros.export.checkpoint import build_model

        metric = self.spec.metric
        return build_model(self.spec.model, self.checkpoint,
                           METRIC_MAX_DEPTH[metric] if metric else None)


class _DA3Source(_Source):
    """A DA3 Hugging Face folder: ``DEPTH_ANYTHING_CHECKPOINTS/<repo name>/`` or downloaded."""

    def __init__(self, spec: ModelSpec, local: str | None) -> None:
        from depth_anything_ros.export.da3_checkpoint import (CONFIG_FILE, download_da3,
                                                              WEIGHTS_FILE)

        self.spec = spec
        self.name: str | None = None
        repo = DA3_MODELS[spec.model].hf_repo
        folder_name = repo.rsplit("/", 1)[-1]
        if local:
            self.folder = Path(local) / folder_name
            if not (self.folder / WEIGHTS_FILE).is_file():
                raise FileNotFoundError(
                    f"{self.folder / WEIGHTS_FILE} not found: DEPTH_ANYTHING_CHECKPOINTS={local} "
                    f"must hold {folder_name}/ with {WEIGHTS_FILE} and {CONFIG_FILE} (official "
                    f"files: https://huggingface.co/{repo})")
        else:
            self.folder, self.name = download_da3(
                spec.model, local_hint=f"name that folder {folder_name}, put it inside a folder "
                "DIR and build again with DEPTH_ANYTHING_CHECKPOINTS=DIR")
        self.checkpoint = self.folder / WEIGHTS_FILE

    def load(self) -> "LoadedModel":
        from depth_anything_ros.export.da3_checkpoint import load_da3

        return load_da3(self.spec.model, self.folder, *self.spec.network_size,
                        checkpoint_name=self.name)


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
