"""What an exported IR says about itself, so the engine needs nothing but the path.

The fields live in the IR's rt_info under ``depth_anything`` as strings (rt_info
values round-trip through the XML as text). Both the exporter and the engine use
this module, so it must not import torch or openvino.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Mapping

RT_INFO_SECTION = "depth_anything"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Metric checkpoints: upstream metric_depth/ defaults per training set.
METRIC_MAX_DEPTH = {"indoor": 20.0, "outdoor": 80.0}


class MetadataError(ValueError):
    """The IR lacks our metadata or carries values we cannot use."""


@dataclass(frozen=True)
class ModelMetadata:
    encoder: str                      # vits | vitb | vitl | vitg
    depth_type: str                   # "relative" (inverse depth) | "metric" (metres)
    max_depth: float                  # metric head scale in metres; 0 for relative
    input_height: int                 # network input size the IR was traced for
    input_width: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    color_order: str = "RGB"          # channel order the network expects
    precision: str = "fp16"           # fp32 | fp16 | int8 (weights as stored)
    checkpoint_name: str = ""
    checkpoint_sha256: str = ""
    tool_version: str = ""

    @property
    def is_metric(self) -> bool:
        return self.depth_type == "metric"

    def to_rt_info(self) -> dict[str, str]:
        out = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, tuple):
                value = ",".join(repr(float(v)) for v in value)
            out[field.name] = str(value)
        return out

    @classmethod
    def from_rt_info(cls, values: Mapping[str, str]) -> "ModelMetadata":
        required = ("encoder", "depth_type", "max_depth", "input_height", "input_width")
        missing = [name for name in required if name not in values]
        if missing:
            raise MetadataError(
                f"IR has no '{RT_INFO_SECTION}' metadata fields {missing}; it was not made by "
                "depth_anything_export. Re-export it with: depth_anything_export --checkpoint "
                "depth_anything_v2_vits.pth --output model.xml")
        kwargs: dict[str, object] = {}
        try:
            for field in dataclasses.fields(cls):
                if field.name not in values:
                    continue
                raw = str(values[field.name])
                if field.name in ("mean", "std"):
                    kwargs[field.name] = tuple(float(v) for v in raw.split(","))
                elif field.name in ("input_height", "input_width"):
                    kwargs[field.name] = int(raw)
                elif field.name == "max_depth":
                    kwargs[field.name] = float(raw)
                else:
                    kwargs[field.name] = raw
        except ValueError as exc:
            raise MetadataError(f"IR metadata field is malformed: {exc}") from exc
        meta = cls(**kwargs)  # type: ignore[arg-type]
        if meta.depth_type not in ("relative", "metric"):
            raise MetadataError(f"depth_type must be relative or metric, got {meta.depth_type!r}")
        if meta.is_metric and meta.max_depth <= 0:
            raise MetadataError("metric IR needs max_depth > 0")
        if len(meta.mean) != 3 or len(meta.std) != 3:
            raise MetadataError("mean and std need three values each")
        return meta
