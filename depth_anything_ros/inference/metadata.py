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

FAMILIES = ("v2", "da3")
# What a graph output means (``outputs`` lists one per output, in graph output order). The
# pipeline decides what to do from these, never from the family.
METRIC_DEPTH = "metric_depth"          # metres (V2 metric heads)
FOCAL_DEPTH = "focal_depth"            # metres = focal px at network input * value / reference
RELATIVE_DEPTH = "relative_depth"      # depth up to scale (and shift), larger = farther
RELATIVE_INVERSE_DEPTH = "relative_inverse_depth"  # up to scale and shift, larger = nearer
CONFIDENCE = "confidence"              # larger = more confident (DA3 small/base: exp + 1)
SKY = "sky"                            # sky score; sky where value >= sky_threshold
MEANINGS = (METRIC_DEPTH, FOCAL_DEPTH, RELATIVE_DEPTH, RELATIVE_INVERSE_DEPTH, CONFIDENCE, SKY)
# DA3 metric: metres = focal * value / 300, focal in pixels at the network input (upstream
# README FAQ, utils/alignment.py apply_metric_scaling).
FOCAL_REFERENCE = 300.0
# Upstream's forward treats sky >= 0.3 as sky (model/da3.py, compute_sky_mask).
SKY_THRESHOLD = 0.3


class MetadataError(ValueError):
    """The IR lacks our metadata or carries values we cannot use."""


@dataclass(frozen=True)
class ModelMetadata:
    encoder: str                      # vits | vitb | vitl | vitg
    depth_type: str                   # "relative" | "metric" (metres, directly or via focal)
    max_depth: float                  # V2 metric head scale in metres; 0 otherwise
    input_height: int                 # network input size the IR was traced for
    input_width: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    color_order: str = "RGB"          # channel order the network expects
    precision: str = "fp16"           # fp32 | fp16 | int8 (weights as stored)
    checkpoint_name: str = ""
    checkpoint_sha256: str = ""
    tool_version: str = ""
    family: str = "v2"                # v2 | da3 (IRs from before DA3 have no field: v2)
    model_name: str = ""              # DA3: the exporter's --model (da3metric-large, ...)
    # (graph output name, meaning) in output order; empty = V2's single depth output.
    outputs: tuple[tuple[str, str], ...] = ()
    focal_reference: float = 0.0      # FOCAL_REFERENCE when an output is focal_depth
    sky_threshold: float = 0.0        # SKY_THRESHOLD when an output is sky

    @property
    def is_metric(self) -> bool:
        return self.depth_type == "metric"

    @property
    def output_meanings(self) -> tuple[tuple[str, str], ...]:
        """(name, meaning) per graph output; V2 IRs' one depth output when not recorded."""
        if self.outputs:
            return self.outputs
        return (("depth", METRIC_DEPTH if self.is_metric else RELATIVE_INVERSE_DEPTH),)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.output_meanings)

    @property
    def depth_meaning(self) -> str:
        """Return what the first output, the depth, means: one of the four depth MEANINGS."""
        return self.output_meanings[0][1]

    def output_named_for(self, meaning: str) -> str | None:
        """Return the name of the output with ``meaning`` (e.g. SKY), None when there is none."""
        return next((name for name, m in self.output_meanings if m == meaning), None)

    def to_rt_info(self) -> dict[str, str]:
        out = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "outputs":
                value = ",".join(f"{name}:{meaning}" for name, meaning in value)
            elif isinstance(value, tuple):
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
                elif field.name in ("max_depth", "focal_reference", "sky_threshold"):
                    kwargs[field.name] = float(raw)
                elif field.name == "outputs":
                    kwargs[field.name] = _parse_outputs(raw)
                else:
                    kwargs[field.name] = raw
        except ValueError as exc:
            raise MetadataError(f"IR metadata field is malformed: {exc}") from exc
        meta = cls(**kwargs)  # type: ignore[arg-type]
        if meta.depth_type not in ("relative", "metric"):
            raise MetadataError(f"depth_type must be relative or metric, got {meta.depth_type!r}")
        if meta.family not in FAMILIES:
            raise MetadataError(f"family must be one of {', '.join(FAMILIES)}, "
                                f"got {meta.family!r}; a newer depth_anything_ros made this IR")
        meanings = [meaning for _, meaning in meta.output_meanings]
        unknown = [meaning for meaning in meanings if meaning not in MEANINGS]
        if unknown:
            raise MetadataError(f"unknown output meaning {unknown[0]!r}; known: "
                                f"{', '.join(MEANINGS)}")
        if METRIC_DEPTH in meanings and meta.max_depth <= 0:
            raise MetadataError("metric IR needs max_depth > 0")
        if FOCAL_DEPTH in meanings and meta.focal_reference <= 0:
            raise MetadataError("a focal_depth output needs focal_reference > 0")
        if SKY in meanings and meta.sky_threshold <= 0:
            raise MetadataError("a sky output needs sky_threshold > 0")
        if len(meta.mean) != 3 or len(meta.std) != 3:
            raise MetadataError("mean and std need three values each")
        return meta


def _parse_outputs(raw: str) -> tuple[tuple[str, str], ...]:
    """``"depth:focal_depth,sky:sky"`` -> ``(("depth", "focal_depth"), ("sky", "sky"))``."""
    pairs = []
    for item in raw.split(",") if raw else ():
        name, sep, meaning = item.partition(":")
        if not sep or not name or not meaning:
            raise ValueError(f"outputs entry {item!r} is not name:meaning")
        pairs.append((name, meaning))
    return tuple(pairs)
