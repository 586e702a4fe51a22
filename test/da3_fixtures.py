"""Session fixtures for Depth Anything 3: reference data, synthetic checkpoints, exported IRs.

test/reference/da3 holds what the shared DA3 reference provides (README.md there): the key
list of the released files (keys.json), the generator of synthetic checkpoints in that
layout (make_checkpoint.py) and upstream's golden outputs for three models. Checkpoints and
IRs are generated into pytest's temp dirs, once per session. A Large checkpoint is 1.3 GB
and its export takes about two minutes on two cores, so a session exports one Large model,
Metric-Large at the golden size (``da3_metric_ir``); Mono-Large's golden is checked on the
torch module (test/test_da3_export.py).

Loaded from conftest.py through ``pytest_plugins``; the ROS tests reuse ``da3_metric_ir``
and ``da3_small_ir``.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path
import subprocess
import sys
from types import ModuleType
from typing import Callable

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
DA3_REFERENCE = REPO / "test" / "reference" / "da3"
GOLDEN_MODELS = ("da3-small", "da3mono-large", "da3metric-large")
GOLDEN_SIZE = (378, 504)  # 480x640 by DA3's rule
DA3_SMALL_SIZE = (140, 182)  # a small non-square network size: fast node tests
# scripts/test.sh's later legs reuse the IRs the main run exported into this folder.
IR_CACHE_ENV = "DEPTH_ANYTHING_TEST_IRS"


@pytest.fixture(scope="session")
def da3_reference() -> Path:
    names = ["keys.json", "make_checkpoint.py",
             *(f"golden_{model}_seed0.npz" for model in GOLDEN_MODELS)]
    missing = [name for name in names if not (DA3_REFERENCE / name).is_file()]
    if missing:
        pytest.fail(f"DA3 reference data {', '.join(missing)} not found in {DA3_REFERENCE}")
    return DA3_REFERENCE


@functools.lru_cache(maxsize=1)
def _load_generator() -> ModuleType:
    """Load test/reference/da3/make_checkpoint.py by path (it imports torch and safetensors).

    Loaded only when a checkpoint is written: the test legs that reuse exported IRs have
    neither package.
    """
    spec = importlib.util.spec_from_file_location("da3_make_checkpoint",
                                                  DA3_REFERENCE / "make_checkpoint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture(scope="session")
def da3_generator(da3_reference: Path) -> ModuleType:
    """Return test/reference/da3/make_checkpoint.py as a module (the folder is no package)."""
    return _load_generator()


@pytest.fixture(scope="session")
def da3_golden(da3_reference: Path) -> Callable[[str], dict[str, np.ndarray]]:
    """Return upstream's golden arrays of a model; batch and view axes dropped."""
    cache: dict[str, dict[str, np.ndarray]] = {}

    def load(model: str) -> dict[str, np.ndarray]:
        if model not in cache:
            with np.load(da3_reference / f"golden_{model}_seed0.npz") as data:
                cache[model] = {key: data[key][0, 0] if data[key].ndim >= 4 else data[key]
                                for key in data.files}
            cache[model]["net_input"] = cache[model]["net_input"][None]  # (1,3,H,W)
        return cache[model]

    return load


@pytest.fixture(scope="session")
def da3_checkpoint(da3_reference: Path, tmp_path_factory) -> Callable[[str], Path]:
    """Return the seed-0 synthetic checkpoint folder of a model (the goldens' weights)."""
    cache: dict[str, Path] = {}
    root = tmp_path_factory.mktemp("da3_checkpoints")

    def make(model: str) -> Path:
        if model not in cache:
            cache[model] = _load_generator().write_checkpoint(model, 0, root / model)
        return cache[model]

    return make


def export_cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run ``depth_anything_export`` in its own interpreter.

    A Large export peaks at ~6 GB; in a child process that memory goes back when it ends.
    """
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "depth_anything_ros.export.cli", *args],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)


@pytest.fixture(scope="session")
def da3_ir(da3_checkpoint, tmp_path_factory) -> Callable[[str, tuple[int, int], str], Path]:
    """Export (once per argument set) a synthetic DA3 checkpoint with the export command."""
    cache: dict[tuple, Path] = {}
    root = tmp_path_factory.mktemp("da3_irs")

    def make(model: str, size: tuple[int, int], precision: str = "fp32") -> Path:
        key = (model, size, precision)
        if key not in cache:
            kept = os.environ.get(IR_CACHE_ENV)
            out = (Path(kept) if kept else root) / f"{model}_{size[0]}x{size[1]}_{precision}"
            out = out / "model.xml"
            if out.is_file():
                cache[key] = out
                return out
            result = export_cli("--model", model, "--checkpoint", str(da3_checkpoint(model)),
                                "-h", str(size[0]), "-w", str(size[1]),
                                "--precision", precision, "--output", str(out))
            assert result.returncode == 0, result.stderr
            cache[key] = out
        return cache[key]

    return make


@pytest.fixture(scope="session")
def da3_metric_ir(da3_ir) -> Path:
    """DA3 Metric-Large, FP32, at the golden size 378x504: the session's one Large export."""
    return da3_ir("da3metric-large", GOLDEN_SIZE, "fp32")


@pytest.fixture(scope="session")
def da3_small_ir(da3_ir) -> Path:
    """DA3-Small, FP16, at a small size for node tests."""
    return da3_ir("da3-small", DA3_SMALL_SIZE, "fp16")
