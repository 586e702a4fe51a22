"""Camera calibrations from the YAML files ROS's camera_calibration writes.

Those files (``ost.yaml``, what camera_info_manager loads) are how calibrations travel
outside a running system, so the standalone tools take them as they are: the same
fields a CameraInfo message carries, under the names the calibrator uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from depth_anything_ros.geometry.calibration import CameraCalibration, IDENTITY_3X3


def _matrix(doc: dict[str, Any], key: str, size: int | None) -> tuple[float, ...]:
    entry = doc.get(key)
    if entry is None:
        return ()
    values = tuple(float(v) for v in (entry.get("data", []) if isinstance(entry, dict) else entry))
    if size is not None and len(values) != size:
        raise ValueError(f"{key} must have {size} values, got {len(values)}")
    return values


def read_camera_info_yaml(path: Path) -> CameraCalibration:
    """Read a camera_calibration YAML file; ValueError naming what is missing or malformed."""
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read camera info {path}: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path} is not a camera_calibration YAML file (no mapping at the top)")
    try:
        width, height = int(doc["image_width"]), int(doc["image_height"])
        k = _matrix(doc, "camera_matrix", 9)
    except KeyError as exc:
        raise ValueError(f"{path} lacks {exc.args[0]} (camera_calibration format)") from None
    if not k:
        raise ValueError(f"{path} lacks camera_matrix (camera_calibration format)")
    return CameraCalibration(
        width=width, height=height, k=k, d=_matrix(doc, "distortion_coefficients", None),
        r=_matrix(doc, "rectification_matrix", 9) or IDENTITY_3X3,
        p=_matrix(doc, "projection_matrix", 12),
        distortion_model=str(doc.get("distortion_model", "")))
