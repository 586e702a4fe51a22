"""Depth Anything 3 Small and Base (DualDPT head) as a torch module, frozen at one size.

Parameter names are the released ``model.safetensors`` keys without the ``model.`` prefix,
so the file loads strictly with no renaming table; the one LayerNorm the release stores
once under four names is one shared module here, so all four names are keys. The module
computes what monocular depth needs: depth = exp(logit) and confidence = exp(logit) + 1,
each (1, H, W), the raw values of upstream's forward in float32 (facts and goldens in
test/reference/da3/README.md; upstream ``model/dualdpt.py``, ``model/utils/head_utils.py``).

Left out of the graph, kept only so that every released key loads:
- the auxiliary (ray) fusion chain and its output convolutions, whose outputs upstream
  deletes once the camera decoder has run;
- the camera decoder (pose from the camera token) and the camera encoder (known poses in),
  neither of which touches depth.

The UV position embeddings depend only on the frozen size and the channel count, so they
are precomputed constants (upstream's in-graph version exports a mixed float/double Einsum).
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from depth_anything_ros.export.configs import EncoderConfig, ENCODERS
from depth_anything_ros.export.da3_backbone import Da3Encoder
from depth_anything_ros.export.network import (Block, dpt_projections, FusionBlock, PATCH,
                                               Scratch)

# Released DA3 models this module builds -> the V2 encoder whose widths they share.
DUALDPT_ENCODERS = {"da3-small": "vits", "da3-base": "vitb"}
OUT_LAYERS = (5, 7, 9, 11)
UV_RATIO = 0.1       # upstream's _add_pos_embed scale
UV_OMEGA = 100.0     # sin/cos base frequency of the UV embedding
HEAD_NORM_EPS = 1e-5
AUX_LEVELS = 4
HEAD_HIDDEN = 32     # head_features_2: width before the 1x1 output convs (main and aux)
RAY_CHANNELS = 7     # 6 ray + 1 confidence
CAMERA_TRUNK_DEPTH = 4
CAMERA_TRUNK_HEADS = 16


def _sincos(channels: int, coords: torch.Tensor) -> torch.Tensor:
    """(len(coords), channels): [sin(c * w), cos(c * w)], w = 1 / omega ** (i / (channels/2))."""
    omega = torch.arange(channels // 2, dtype=torch.float32)
    omega /= channels / 2.0
    omega = 1.0 / UV_OMEGA ** omega
    angles = coords[:, None] * omega
    return torch.cat((angles.sin(), angles.cos()), dim=1)


class UvEmbedding(nn.Module):
    """Adds upstream's sin/cos UV embedding of a (rows, cols) feature map, times 0.1.

    The UV grid spans the image's aspect ratio, normalised by its diagonal, at the map's
    pixel centres. The first half of the channels depends only on the column (u), the
    second only on the row (v), so two thin tables broadcast over the map instead of one
    full-size constant (24 MB for the 32-channel map at 378x504).
    """

    def __init__(self, channels: int, rows: int, cols: int, aspect: float) -> None:
        super().__init__()
        diagonal = (aspect ** 2 + 1.0) ** 0.5
        span_u, span_v = aspect / diagonal, 1.0 / diagonal
        u = torch.linspace(-span_u * (cols - 1) / cols, span_u * (cols - 1) / cols, steps=cols,
                           dtype=torch.float32)
        v = torch.linspace(-span_v * (rows - 1) / rows, span_v * (rows - 1) / rows, steps=rows,
                           dtype=torch.float32)
        half = channels // 2
        self.half = half
        self.register_buffer("u", (_sincos(half, u) * UV_RATIO).T.reshape(1, half, 1, cols),
                             persistent=False)
        self.register_buffer("v", (_sincos(half, v) * UV_RATIO).T.reshape(1, half, rows, 1),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((x[:, :self.half] + self.u, x[:, self.half:] + self.v), dim=1)


class DualDptScratch(Scratch):
    """V2's DPT scratch with DA3's depth+confidence output, plus the unused aux (ray) chain.

    The aux modules carry the released layout: ``output_conv1_aux[i]`` five 3x3 convs,
    ``output_conv2_aux[i]`` conv3x3 (0), channels-last LayerNorm (2, one module shared by
    all four levels), conv1x1 to 7 channels (5); 1, 3, 4 are upstream's parameterless
    permutes and ReLU, stood in for by Identity since this branch never runs.
    """

    def __init__(self, out_channels: tuple[int, ...], features: int) -> None:
        half = features // 2
        super().__init__(out_channels, features, nn.Sequential(
            nn.Conv2d(half, HEAD_HIDDEN, 3, padding=1), nn.ReLU(),
            nn.Conv2d(HEAD_HIDDEN, 2, 1)), lateral4=False)
        for i in range(1, 5):
            setattr(self, f"refinenet{i}_aux", FusionBlock(features, lateral=i < 4))
        widths = (features, half, features, half, features, half)
        self.output_conv1_aux = nn.ModuleList(
            nn.Sequential(*(nn.Conv2d(a, b, 3, padding=1) for a, b in zip(widths, widths[1:])))
            for _ in range(AUX_LEVELS))
        shared_norm = nn.LayerNorm(HEAD_HIDDEN)
        self.output_conv2_aux = nn.ModuleList(
            nn.Sequential(nn.Conv2d(half, HEAD_HIDDEN, 3, padding=1), nn.Identity(), shared_norm,
                          nn.Identity(), nn.Identity(), nn.Conv2d(HEAD_HIDDEN, RAY_CHANNELS, 1))
            for _ in range(AUX_LEVELS))


class DualDptHead(nn.Module):
    """Tokens of the four out layers -> (B, 2, H, W) depth and confidence logits."""

    def __init__(self, cfg: EncoderConfig, height: int, width: int) -> None:
        super().__init__()
        self.grid = (height // PATCH, width // PATCH)
        self.size = (height, width)
        self.norm = nn.LayerNorm(2 * cfg.embed_dim, eps=HEAD_NORM_EPS)
        self.projects, self.resize_layers = dpt_projections(2 * cfg.embed_dim, cfg.out_channels)
        self.scratch = DualDptScratch(cfg.out_channels, cfg.features)
        aspect = width / height
        self.level_uv = nn.ModuleList(UvEmbedding(ch, *self.grid, aspect)
                                      for ch in cfg.out_channels)
        self.output_uv = UvEmbedding(cfg.features // 2, height, width, aspect)

    def forward(self, tokens: list[torch.Tensor]) -> torch.Tensor:
        levels = []
        for i, t in enumerate(tokens):
            x = self.norm(t).permute(0, 2, 1).reshape(t.shape[0], t.shape[-1], *self.grid)
            x = self.level_uv[i](self.projects[i](x))
            levels.append(self.resize_layers[i](x))
        out = self.scratch.fuse(levels)
        out = F.interpolate(out, size=self.size, mode="bilinear", align_corners=True)
        return self.scratch.output_conv2(self.output_uv(out))


class CameraEncoder(nn.Module):
    """Upstream's ``cam_enc`` layout (known camera poses -> camera tokens); never run here."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.pose_branch = nn.ModuleDict({"fc1": nn.Linear(9, dim // 2),
                                          "fc2": nn.Linear(dim // 2, dim)})
        self.token_norm = nn.LayerNorm(dim)
        self.trunk = nn.Sequential(*(Block(dim, CAMERA_TRUNK_HEADS, swiglu=False)
                                     for _ in range(CAMERA_TRUNK_DEPTH)))
        self.trunk_norm = nn.LayerNorm(dim)


class CameraDecoder(nn.Module):
    """Upstream's ``cam_dec`` layout (camera token -> pose and field of view); never run here."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim),
                                      nn.ReLU())
        self.fc_t = nn.Linear(dim, 3)
        self.fc_qvec = nn.Linear(dim, 4)
        self.fc_fov = nn.Sequential(nn.Linear(dim, 2), nn.ReLU())


class Da3DualDpt(nn.Module):
    """Input (1, 3, H, W) ImageNet-normalised RGB at the frozen size.

    Output ``(depth, confidence)``, each (1, H, W) float32: relative depth (larger =
    farther) and per-pixel confidence in (1, inf).
    """

    def __init__(self, model_name: str, height: int, width: int) -> None:
        super().__init__()
        cfg = ENCODERS[DUALDPT_ENCODERS[model_name]]
        self.model_name = model_name
        self.config = cfg
        self.size = (height, width)
        self.backbone = nn.ModuleDict({"pretrained": Da3Encoder(cfg, OUT_LAYERS, height, width)})
        self.head = DualDptHead(cfg, height, width)
        self.cam_dec = CameraDecoder(2 * cfg.embed_dim)
        self.cam_enc = CameraEncoder(cfg.embed_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if tuple(x.shape[-2:]) != self.size:
            raise ValueError(f"{self.model_name} was built for {self.size[0]}x{self.size[1]} "
                             f"input, got {tuple(x.shape[-2:])}")
        logits = self.head(self.backbone["pretrained"](x))
        return torch.exp(logits[:, 0]), torch.exp(logits[:, 1]) + 1


def build_da3_dualdpt(model_name: str, height: int, width: int) -> nn.Module:
    """Build an untrained DA3 Small/Base module for ``height`` x ``width`` (multiples of 14).

    The caller loads the released weights strictly (keys without ``model.``, aliases filled).
    """
    if model_name not in DUALDPT_ENCODERS:
        raise ValueError(f"unknown DualDPT model {model_name!r}; one of "
                         f"{', '.join(DUALDPT_ENCODERS)}")
    if height <= 0 or width <= 0 or height % PATCH or width % PATCH:
        raise ValueError(f"network size {height}x{width} must be positive multiples of {PATCH}")
    return Da3DualDpt(model_name, height, width).eval()
