"""The Depth Anything 3 models the exporter knows: name -> network builder and what it outputs.

Every model is built by ``builder(model_name, height, width)`` returning a torch module
whose state-dict keys are the released ones without the leading ``model.`` and whose
``forward`` returns one (1,H,W) tensor per entry of ``outputs``, in that order. The
builders are imported only when a model is built, so the CLI can list the names without
torch. Only the Apache-2.0 models are here (upstream README's model table); DA3-Large,
DA3-Giant and the Nested models are CC BY-NC 4.0.
"""

from __future__ import annotations

from dataclasses import dataclass
import importlib
from typing import TYPE_CHECKING

from depth_anything_ros.inference.metadata import (CONFIDENCE, FOCAL_DEPTH, RELATIVE_DEPTH,
                                                   SKY)

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class DA3Model:
    name: str                              # the --model value, = config.json's model_name
    encoder: str                           # vits | vitb | vitl
    hf_repo: str
    outputs: tuple[tuple[str, str], ...]   # (graph output name, meaning), in output order
    builder: str                           # "module:function" building the torch module
    licence: str = "Apache-2.0"

    @property
    def depth_type(self) -> str:
        """V2's field for the depth output: metric when it becomes metres (via the focal)."""
        return "metric" if (self.outputs[0][1] == FOCAL_DEPTH) else "relative"

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.outputs)

    def build(self, height: int, width: int) -> "nn.Module":
        module, function = self.builder.split(":")
        try:
            builder = getattr(importlib.import_module(module), function)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            raise RuntimeError(f"{self.name}'s network ({module}) is not in this "
                               "installation of depth_anything_ros") from None
        return builder(self.name, height, width)


# ONNX node names of every DA3 head (module ``head``), for ``--int8-float-head``.
HEAD_PATTERN = r"/head/.*"
_DPT = "depth_anything_ros.export.da3_dpt:build_da3_dpt"
_DUALDPT = "depth_anything_ros.export.da3_dualdpt:build_da3_dualdpt"

DA3_MODELS: dict[str, DA3Model] = {model.name: model for model in (
    DA3Model("da3metric-large", "vitl", "depth-anything/DA3METRIC-LARGE",
             (("depth", FOCAL_DEPTH), ("sky", SKY)), _DPT),
    DA3Model("da3mono-large", "vitl", "depth-anything/DA3MONO-LARGE",
             (("depth", RELATIVE_DEPTH), ("sky", SKY)), _DPT),
    DA3Model("da3-small", "vits", "depth-anything/DA3-SMALL",
             (("depth", RELATIVE_DEPTH), ("confidence", CONFIDENCE)), _DUALDPT),
    DA3Model("da3-base", "vitb", "depth-anything/DA3-BASE",
             (("depth", RELATIVE_DEPTH), ("confidence", CONFIDENCE)), _DUALDPT),
)}
