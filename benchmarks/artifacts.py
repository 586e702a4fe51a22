"""The models every section measures, exported once into a cache outside the repository.

No real weights exist on the machines this runs on, so by default a synthetic checkpoint
with the real architecture is generated (test/reference/synthetic_checkpoint.py): the
timings are those of the real network, only the depth values are meaningless. All IRs are
metric (indoor head, 20 m) because the node publishes depth and clouds only for metric
models; the head's sigmoid costs nothing measurable. Cache entries are keyed by a hash of
the export code, the checkpoint, the calibration scene generator and the library
versions, so a change to any of them never reuses a stale IR.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import hashlib
import importlib.util
import os
from pathlib import Path
import shutil
import tempfile
from types import ModuleType
from typing import Callable
import warnings

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = Path.home() / ".cache" / "depth_anything_ros" / "benchmarks"
MAX_DEPTH = 20.0
SYNTHETIC_SEED = 0
# Held-out scenes for accuracy start far from the calibration seeds (0..N-1).
HELD_OUT_SEED = 10_000
PRECISIONS = ("fp32", "fp16", "int8")


GENERATOR = REPO / "test" / "reference" / "synthetic_checkpoint.py"
DA3_GENERATOR = REPO / "test" / "reference" / "da3" / "make_checkpoint.py"


def keys_file() -> Path:
    """Return the official key layout the synthetic checkpoint follows.

    The one shipped in test/reference, unless $DEPTH_ANYTHING_REFERENCE names another folder
    holding it.
    """
    return Path(os.environ.get("DEPTH_ANYTHING_REFERENCE", GENERATOR.parent)) \
        / "official_keys.json"


def _load_module(path: Path, name: str) -> ModuleType:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (it ships with the repository: restore "
                                "it, or pass --checkpoint)")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def scenes(count: int, height: int, width: int, first_seed: int = 0) -> list[np.ndarray]:
    """Synthetic BGR camera frames from test/scenes.py, the project's one scene generator."""
    module = _load_module(REPO / "test" / "scenes.py", "depth_anything_scenes")
    return [module.scene(first_seed + i, height, width) for i in range(count)]


def _fingerprint(*parts: str) -> str:
    """Export code, calibration scenes and library versions.

    Those are what decide the bytes of an exported IR.
    """
    import nncf
    import openvino
    import torch

    digest = hashlib.sha256()
    sources = sorted((REPO / "depth_anything_ros" / "export").glob("*.py"))
    sources += [REPO / "depth_anything_ros" / "inference" / name
                for name in ("metadata.py", "preprocess.py")]
    sources.append(REPO / "test" / "scenes.py")  # the INT8 calibration images
    for path in sources:
        digest.update(path.read_bytes())
    for part in (torch.__version__, openvino.__version__, nncf.__version__, *parts):
        digest.update(part.encode())
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class ModelFiles:
    encoder: str
    network_size: tuple[int, int]
    checkpoint: Path
    onnx: Path
    naive_ir: Path | None                     # what `ovc model.onnx` writes; None: not made
    ours: dict[str, Path] = field(default_factory=dict)  # precision -> IR with our metadata


class ModelBuilder:
    """Exports on demand.

    Each artefact is written to a temporary name and renamed into place, so an interrupted
    run never leaves a half-written model in the cache.
    """

    baselines = True  # also the `ovc` IR the baseline rows time

    def __init__(self, cache: Path, encoder: str, checkpoint: Path | None,
                 calibration_size: int, log: Callable[[str], None] = print) -> None:
        self.encoder = encoder
        self.calibration_size = calibration_size
        self.log = log
        self._checkpoint = checkpoint
        self._loaded = None
        if checkpoint is not None:
            stat = checkpoint.stat()
            source = f"{checkpoint.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
        else:
            # The synthetic weights are decided by the generator and the key layout.
            digest = hashlib.sha256()
            for path in self._generator_files():
                digest.update(path.read_bytes() if path.is_file() else b"missing")
            source = digest.hexdigest()
        self.root = cache / f"{encoder}-{_fingerprint(encoder, source)}"

    def _generator_files(self) -> tuple[Path, ...]:
        return (GENERATOR, keys_file())

    def checkpoint(self) -> Path:
        if self._checkpoint is None:
            path = self.root / f"synthetic_{self.encoder}_seed{SYNTHETIC_SEED}.pth"
            if not path.is_file():
                import torch

                self.log(f"generating the synthetic {self.encoder} checkpoint")
                keys = keys_file()
                if not keys.is_file():
                    raise FileNotFoundError(
                        f"{keys} not found (DEPTH_ANYTHING_REFERENCE, when set, must name a "
                        "folder holding official_keys.json; or pass --checkpoint)")
                module = _load_module(GENERATOR, "depth_anything_synthetic_checkpoint")
                with Staged(path) as tmp:
                    torch.save(module.synthetic_state_dict(self.encoder, SYNTHETIC_SEED, keys),
                               tmp)
            self._checkpoint = path
        return self._checkpoint

    def loaded(self):
        """Return the PyTorch model (``LoadedModel``), built once per run."""
        if self._loaded is None:
            from depth_anything_ros.export.checkpoint import build_model

            self._loaded = build_model(self.encoder, self.checkpoint(), MAX_DEPTH)
        return self._loaded

    def models(self, network_size: tuple[int, int],
               precisions: tuple[str, ...] = PRECISIONS) -> ModelFiles:
        folder = self.root / f"{network_size[0]}x{network_size[1]}"
        onnx_path = self._onnx(folder / "model.onnx", network_size)
        naive = self._naive(folder / "naive" / "model.xml", onnx_path) if self.baselines else None
        ours = {p: self._ours(folder, onnx_path, network_size, p) for p in precisions}
        return ModelFiles(self.encoder, network_size, self.checkpoint(), onnx_path, naive, ours)

    def _onnx(self, path: Path, size: tuple[int, int]) -> Path:
        if not path.is_file():
            import torch

            from depth_anything_ros.export.export import ExportRequest, export_onnx

            self.log(f"exporting ONNX at {size[0]}x{size[1]}")
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            with Staged(path) as tmp:
                export_onnx(self.loaded(), ExportRequest(*size), tmp)
        return path

    def _naive(self, xml: Path, onnx_path: Path) -> Path:
        """`ovc model.onnx`: convert_model + save_model with its default fp16 compression."""
        if not xml.is_file():
            import openvino as ov

            self.log("converting the ONNX the way `ovc` does by default")
            with Staged(xml.parent) as tmp:
                tmp.mkdir()
                ov.save_model(ov.convert_model(str(onnx_path)), str(tmp / xml.name),
                              compress_to_fp16=True)
        return xml

    def _ours(self, folder: Path, onnx_path: Path, size: tuple[int, int],
              precision: str) -> Path:
        from depth_anything_ros.export.export import ExportRequest

        name = precision if precision != "int8" else f"int8_c{self.calibration_size}"
        xml = folder / name / "model.xml"
        if xml.is_file():
            return xml
        calibration: tuple[Path, ...] = ()
        if precision == "int8":
            calibration = (self.calibration_images(self.calibration_size),)
            self.log(f"quantizing to INT8 at {size[0]}x{size[1]} on {self.calibration_size} "
                     "synthetic scenes (NNCF, about a minute at 518x686 on 2 cores)")
        else:
            self.log(f"converting to our {precision} IR at {size[0]}x{size[1]}")
        return self.convert(xml, onnx_path, ExportRequest(
            *size, precision=precision, calibration=calibration,
            calibration_size=self.calibration_size))

    def convert(self, xml: Path, onnx_path: Path, request) -> Path:
        """``xml`` (an ``ExportRequest``'s IR of ``onnx_path``), converted unless cached."""
        from depth_anything_ros.export.export import convert_to_ir, metadata_for

        if not xml.is_file():
            with Staged(xml.parent) as tmp:
                convert_to_ir(onnx_path, metadata_for(self.loaded(), request), request,
                              tmp / xml.name)
        return xml

    def calibration_images(self, count: int) -> Path:
        import cv2

        folder = self.root / f"calibration_scenes_{count}"
        if not folder.is_dir():
            with Staged(folder) as tmp:
                tmp.mkdir()
                for i, image in enumerate(scenes(count, 480, 640)):
                    cv2.imwrite(str(tmp / f"scene_{i:03d}.png"), image)
        return folder


class DA3ModelBuilder(ModelBuilder):
    """A Depth Anything 3 model at one network size, from a synthetic checkpoint.

    The network is built for its export size (the contract of export/da3_models.py), and
    the checkpoint comes from test/reference/da3's generator (real timings, meaningless
    depth). The model section times it without the baselines (PyTorch, ONNX Runtime, `ovc`
    IR): Metric-Large is about ten times V2-Small's work, and its rows stand beside V2's.
    ``encoder`` holds the model name, which labels its cache folder and its section.
    """

    baselines = False

    def __init__(self, cache: Path, model: str, network_size: tuple[int, int],
                 calibration_size: int, log: Callable[[str], None] = print) -> None:
        self.model = model
        self.network_size = network_size
        super().__init__(cache, model, None, calibration_size, log)

    def _generator_files(self) -> tuple[Path, ...]:
        return (DA3_GENERATOR, DA3_GENERATOR.parent / "keys.json")

    def checkpoint(self) -> Path:
        if self._checkpoint is None:
            folder = self.root / f"synthetic_{self.model}_seed{SYNTHETIC_SEED}"
            if not folder.is_dir():
                self.log(f"generating the synthetic {self.model} checkpoint")
                module = _load_module(DA3_GENERATOR, "da3_make_checkpoint")
                with Staged(folder) as tmp:
                    module.write_checkpoint(self.model, SYNTHETIC_SEED, tmp)
            self._checkpoint = folder
        return self._checkpoint

    def loaded(self):
        if self._loaded is None:
            from depth_anything_ros.export.da3_checkpoint import load_da3

            self._loaded = load_da3(self.model, self.checkpoint(), *self.network_size)
        return self._loaded

    def models(self, network_size: tuple[int, int],
               precisions: tuple[str, ...] = PRECISIONS) -> ModelFiles:
        if network_size != self.network_size:
            raise ValueError(f"{self.model} is built for {self.network_size}, "
                             f"not {network_size}")
        files = super().models(network_size, precisions)
        self._loaded = None  # only the export needs the torch model (1.3 GB for a Large one)
        return files


class Staged:
    """``with Staged(final) as tmp``: write ``tmp`` (a file or a folder).

    It is renamed to ``final`` only when the block succeeds.
    """

    def __init__(self, final: Path) -> None:
        self.final = final

    def __enter__(self) -> Path:
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self._dir = Path(tempfile.mkdtemp(prefix=".staging_", dir=self.final.parent))
        return self._dir / self.final.name

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                os.replace(self._dir / self.final.name, self.final)
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)
