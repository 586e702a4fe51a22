"""Session fixtures: the reference data, a synthetic checkpoint and IRs exported from it.

Also the test harness's fixtures: ``ros_workspace`` (the package built once with colcon),
``launch_node`` (the installed node started from that build) and ``reference_engine`` (the
standalone engine outputs are compared with); the rest of the harness is in ros_harness.py,
ros_camera.py and ros_diagnostics.py.

The reference folder (``official_keys.json`` and the upstream golden outputs) is
test/reference, or ``$DEPTH_ANYTHING_REFERENCE`` when set. The synthetic checkpoint always
comes from the project's own generator, test/reference/synthetic_checkpoint.py.
Everything generated is written to pytest's temp dirs, never into the reference folder.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path
import signal
import warnings

import numpy as np
import pytest

pytest_plugins = ["da3_fixtures"]  # Depth Anything 3's session fixtures

REPO = Path(__file__).resolve().parents[1]
GENERATOR = REPO / "test" / "reference" / "synthetic_checkpoint.py"
REFERENCE_DIR = Path(os.environ.get("DEPTH_ANYTHING_REFERENCE", REPO / "test" / "reference"))
GOLDEN_FILE = "golden_vits_relative_seed0.npz"
SMALL_SIZE = (140, 182)  # a small non-square network size: fast node tests


@pytest.fixture(scope="session")
def shared_reference() -> Path:
    """Return the reference folder (the name predates its move into the repository)."""
    missing = [name for name in ("official_keys.json", GOLDEN_FILE)
               if not (REFERENCE_DIR / name).is_file()]
    if missing:
        pytest.fail(f"reference data {', '.join(missing)} not found in {REFERENCE_DIR}: "
                    "it ships in test/reference; DEPTH_ANYTHING_REFERENCE, when set, must "
                    "name a folder holding both files")
    return REFERENCE_DIR


@pytest.fixture(scope="session")
def golden(shared_reference: Path) -> dict[str, np.ndarray]:
    with np.load(shared_reference / GOLDEN_FILE) as data:
        return {key: data[key] for key in data.files}


@functools.lru_cache(maxsize=1)
def _load_generator():
    """Load test/reference/synthetic_checkpoint.py by path (it imports torch).

    test/reference is data plus one script, not a package.
    """
    spec = importlib.util.spec_from_file_location("depth_anything_synthetic_checkpoint",
                                                  GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture(scope="session")
def synthetic_generator():
    """Return test/reference/synthetic_checkpoint.py as a module."""
    return _load_generator()


def _synthetic_vits(shared_reference: Path, tmp_path_factory) -> Path:
    """Write the seed-0 synthetic vits checkpoint once per session; return its path."""
    from da3_fixtures import IR_CACHE_ENV  # the plugin's, once pytest has loaded it

    path = tmp_path_factory.getbasetemp() / "checkpoints" / "depth_anything_v2_vits.pth"
    if not path.is_file():
        try:
            import torch
        except ImportError:
            pytest.fail(f"torch is not installed, and {IR_CACHE_ENV} holds no exported IR "
                        "for this test: run the main suite first (scripts/test.sh does)")
        path.parent.mkdir(exist_ok=True)
        torch.save(_load_generator().synthetic_state_dict(
            "vits", 0, shared_reference / "official_keys.json"), path)
    return path


@pytest.fixture(scope="session")
def synthetic_checkpoint(shared_reference: Path, tmp_path_factory) -> Path:
    """Return the seed-0 synthetic vits checkpoint the golden outputs were computed with."""
    return _synthetic_vits(shared_reference, tmp_path_factory)


def _export(checkpoint: Path, out: Path, size: tuple[int, int], precision: str,
            max_depth: float | None, calibration: tuple[Path, ...] = ()) -> Path:
    import torch

    from depth_anything_ros.export.checkpoint import build_model
    from depth_anything_ros.export.export import ExportRequest, export_model

    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    loaded = build_model("vits", checkpoint, max_depth)
    return export_model(loaded, ExportRequest(*size, precision=precision,
                                              calibration=calibration), out)


@pytest.fixture(scope="session")
def export_ir(shared_reference: Path, tmp_path_factory):
    """Export (once per argument set) the synthetic vits checkpoint to an IR.

    With ``$DEPTH_ANYTHING_TEST_IRS`` set, IRs are kept in that folder and taken from it
    when present: scripts/test.sh's distro and library legs reuse the main run's exports
    and so need no torch. It empties the folder before the main run, so none is stale.
    """
    cache: dict[tuple, Path] = {}
    root = tmp_path_factory.mktemp("irs")
    from da3_fixtures import IR_CACHE_ENV

    kept = os.environ.get(IR_CACHE_ENV)

    def make(size: tuple[int, int], precision: str = "fp32", max_depth: float | None = None,
             calibration: tuple[Path, ...] = ()) -> Path:
        key = (size, precision, max_depth, calibration)
        if key not in cache:
            kind = f"metric{max_depth:g}" if max_depth else "relative"
            name = f"vits_{kind}_{size[0]}x{size[1]}_{precision}"
            folder = Path(kept) if kept and not calibration else root
            out = folder / name / "model.xml"
            if not out.is_file():
                out = _export(_synthetic_vits(shared_reference, tmp_path_factory),
                              out, size, precision, max_depth, calibration)
            cache[key] = out
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
    """Return the package built once per session with colcon, and its install environment.

    Every test module that starts the installed node shares this build.
    """
    from ros_harness import colcon_build

    root = tmp_path_factory.mktemp("colcon_ws")
    return root, colcon_build(REPO, root)


@pytest.fixture(scope="session")
def launch_node(ros_workspace, tmp_path_factory):
    """Return ``launch(name, ros_args, extra_env=None)``: the installed node, started.

    Each node writes its output and compiled-model cache to a fresh temp folder named
    ``name``. A test stops its nodes itself; any still running at the end of the session
    are killed here, so none outlives the run.
    """
    from ros_harness import NodeProcess, start_node

    started: list[NodeProcess] = []

    def launch(name: str, ros_args: list[str],
               extra_env: dict[str, str] | None = None) -> NodeProcess:
        started.append(start_node(ros_workspace, tmp_path_factory.mktemp(name), ros_args,
                                  extra_env))
        return started[-1]

    yield launch
    for proc in started:
        proc.stop(signal.SIGKILL, 5.0)


@pytest.fixture(scope="session")
def reference_engine():
    """Return ``engine(ir, precision="f32")``: the standalone engine outputs are checked against.

    f32 (or ``precision``; "" is the device's default) and no compile cache. One engine
    per IR and precision for the session, so each graph compiles once for every test.
    """
    from depth_anything_ros.inference.engine import DepthEngine, EngineConfig

    engines: dict[tuple[Path, str], DepthEngine] = {}

    def engine(ir: Path, precision: str = "f32") -> DepthEngine:
        key = (Path(ir), precision)
        if key not in engines:
            engines[key] = DepthEngine(EngineConfig(str(ir), inference_precision=precision,
                                                    cache_dir="none"))
        return engines[key]

    return engine
