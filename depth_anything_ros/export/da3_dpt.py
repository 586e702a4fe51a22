"""Depth Anything 3 Mono-Large and Metric-Large as a torch module with the released key names.

Upstream (ByteDance-Seed/Depth-Anything-3, ``configs/da3{mono,metric}-large.yaml``,
``model/dpt.py``, ``model/dinov2/``) runs these two models as a plain DINOv2 ViT-L (out
layers 4, 11, 17, 23; no RoPE, no camera token, no token concatenation) and a DPT head
with a sky head: the same computation as Depth Anything V2's vitl network, so V2's blocks
(export/network.py) are reused and only the differences are spelled out here:

- key prefixes ``backbone.pretrained.*`` and ``head.*`` (the released file adds ``model.``);
- no ``mask_token``; final backbone norm eps 1e-5;
- ``refinenet4`` has no ``resConfUnit1``;
- ``output_conv2`` ends in its 1x1 conv; depth = exp(logit);
- ``sky_output_conv2`` (same shape) beside it on the same features; sky = relu(logit).

Both models share the weights layout; they differ in what the depth means (relative
depth, or depth at a 300 px focal length for Metric-Large), which the registry records.
"""

from __future__ import annotations

import torch
from torch import nn

from depth_anything_ros.export.configs import ENCODERS
from depth_anything_ros.export.network import DinoV2, DPTHead, output_conv, PATCH

ENCODER = "vitl"
BACKBONE_NORM_EPS = 1e-5  # upstream builds it with nn.LayerNorm's default


class DA3DPTHead(DPTHead):
    """V2's DPT head without the refinenet4 lateral unit, plus the sky head."""

    def __init__(self) -> None:
        super().__init__(ENCODERS[ENCODER], output_tail=(), lateral4=False)
        self.scratch.sky_output_conv2 = output_conv(ENCODERS[ENCODER].features)

    def forward(self, tokens: list[torch.Tensor], grid_h: int,
                grid_w: int) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(tokens, grid_h, grid_w)
        return self.scratch.output_conv2(features), self.scratch.sky_output_conv2(features)


class DA3DPT(nn.Module):
    """Input (1,3,H,W) ImageNet-normalised RGB; output ``(depth, sky)``, each (1,H,W).

    ``height``/``width`` is the export size: the position embedding is interpolated for
    it on the first forward after loading and then frozen (V2's ``pos_embed_for``).
    """

    def __init__(self, height: int, width: int) -> None:
        super().__init__()
        if height % PATCH or width % PATCH:
            raise ValueError(f"network size {height}x{width} is not a multiple of {PATCH}")
        self.input_size = (height, width)
        self.config = ENCODERS[ENCODER]
        self.backbone = nn.ModuleDict(
            {"pretrained": DinoV2(self.config, mask_token=False, norm_eps=BACKBONE_NORM_EPS)})
        self.head = DA3DPTHead()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        grid_h, grid_w = x.shape[-2] // PATCH, x.shape[-1] // PATCH
        tokens = self.backbone["pretrained"].intermediate_tokens(
            x, self.config.intermediate_layers)
        depth_logit, sky_logit = self.head(tokens, int(grid_h), int(grid_w))
        return torch.exp(depth_logit).squeeze(1), torch.relu(sky_logit).squeeze(1)


def build_da3_dpt(model_name: str, height: int, width: int) -> DA3DPT:
    """Registry builder for ``da3mono-large`` and ``da3metric-large`` (same network)."""
    if model_name not in ("da3mono-large", "da3metric-large"):
        raise ValueError(f"{model_name} is not a DA3 DPT (Large) model")
    return DA3DPT(height, width)
