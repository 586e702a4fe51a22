"""ROS lint in the suite: ament_flake8 and ament_pep257 over all of the project's Python.

Checked: the package (depth_anything_ros/), the tests (test/), the benchmarks (benchmarks/),
the helper scripts (scripts/), the launch file (launch/) and setup.py. Not checked: build/,
install/ and log/ (colcon's output) and .venv/. flake8 runs with the project's .flake8 (why it
differs from ROS's defaults is written there); pep257 runs with ament's own convention, plus
the one exception explained in test_pep257. Also not checked: VERBATIM, reference tooling
kept byte-identical to the copy the reference data was made with (a restyled copy could no
longer be compared with it).
"""

from __future__ import annotations

from pathlib import Path

from ament_flake8.main import main_with_errors
from ament_pep257.main import main as pep257_main
import pytest

REPO = Path(__file__).resolve().parents[1]
CHECKED = [str(REPO / name) for name in
           ("depth_anything_ros", "test", "benchmarks", "scripts", "launch", "setup.py")]


@pytest.mark.flake8
@pytest.mark.linter
def test_flake8():
    rc, errors = main_with_errors(argv=["--config", str(REPO / ".flake8"), *CHECKED])
    assert rc == 0, \
        "Found %d code style errors / warnings:\n" % len(errors) + "\n".join(errors)


@pytest.mark.linter
@pytest.mark.pep257
def test_pep257():
    # ament's convention ignores D212 and so enforces D213: a multi-line docstring's summary
    # on the line after the opening quotes. This project puts the summary on the first line,
    # next to the quotes (PEP 257's own examples do the same), in every multi-line docstring,
    # so D213 is ignored as well. The paths go first: --add-ignore takes every word after it.
    rc = pep257_main(argv=[*CHECKED, "--add-ignore", "D213"])
    assert rc == 0, "Found code style errors / warnings"
