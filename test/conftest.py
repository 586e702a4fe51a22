"""Session fixtures: the synthetic checkpoint of ../shared/reference and IRs exported from it.

Everything is generated in pytest's temp dirs; ../shared is read-only in CI.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_REFERENCE = Path(os.environ.get("DEPTH_ANYTHING_REFERENCE",
                                       REPO.parent / "shared" / "reference"))
SMALL_SIZE = (140, 182)  # a small non-square network size: fast node tests


@pytest.fixture(scope="session")
def shared_reference() -> Path:
    if not (SHARED_REFERENCE / "official_keys.json").is_file():
        pytest.fail(f"reference data not found at {SHARED_REFERENCE}: clone the project with "
                    "../shared beside it or set DEPTH_ANYTHING_REFERENCE")
    return SHARED_REFERENCE


@pytest.fixture(scope="session")
def golden(shared_reference: Path) -> dict[str, np.ndarray]:
    with np.load(shared_reference / "golden_vits_relative_seed0.npz") as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="session")
def synthetic_checkpoint(shared_reference: Path, tmp_path_factory) -> Path:
    import torch

    spec = importlib.util.spec_from_file_location("make_checkpoint",
                                                  shared_reference / "make_checkpoint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = tmp_path_factory.mktemp("checkpoints") / "depth_anything_v2_vits.pth"
    torch.save(module.synthetic_state_dict("vits", 0), path)
    return path


def _export(checkpoint: Path, out: Path, size: tuple[int, int], precision: str,
            max_depth: float | None, calibration: tuple[Path, ...] = ()) -> Path:
    import torch

    from depth_anything_ros.model.checkpoint import build_model
    from depth_anything_ros.model.export import ExportRequest, export_model

    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    loaded = build_model("vits", checkpoint, max_depth)
    return export_model(loaded, ExportRequest(*size, precision=precision,
                                              calibration=calibration), out)


@pytest.fixture(scope="session")
def export_ir(synthetic_checkpoint: Path, tmp_path_factory):
    """Export (once per argument set) the synthetic vits checkpoint to an IR."""
    cache: dict[tuple, Path] = {}
    root = tmp_path_factory.mktemp("irs")

    def make(size: tuple[int, int], precision: str = "fp32", max_depth: float | None = None,
             calibration: tuple[Path, ...] = ()) -> Path:
        key = (size, precision, max_depth, calibration)
        if key not in cache:
            kind = f"metric{max_depth:g}" if max_depth else "relative"
            out = root / f"vits_{kind}_{size[0]}x{size[1]}_{precision}" / "model.xml"
            cache[key] = _export(synthetic_checkpoint, out, size, precision, max_depth,
                                 calibration)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def small_relative_ir(export_ir) -> Path:
    return export_ir(SMALL_SIZE, "fp16")


@pytest.fixture(scope="session")
def small_metric_ir(export_ir) -> Path:
    return export_ir(SMALL_SIZE, "fp16", max_depth=20.0)


@pytest.fixture(scope="session")
def ros_workspace(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The package built once per session with colcon, and its install environment:
    every test module that starts the installed node shares this build."""
    from ros_harness import colcon_build

    root = tmp_path_factory.mktemp("colcon_ws")
    return root, colcon_build(REPO, root)
