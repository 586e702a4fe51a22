"""Depth Anything V2 as a torch module whose parameter names are the official checkpoint keys.

Why our own module rather than transformers' ``DepthAnythingForDepthEstimation``:
- the official ``.pth`` files load as they are (``load_state_dict(strict=True)``), with no
  key-renaming table (transformers splits ``qkv`` and renumbers the fusion blocks), so a
  mismatch is reported in the official names users see in their file;
- the DINOv2 position embedding is computed eagerly for the export size and frozen into the
  graph as a constant: correct at any multiple-of-14 size, square or not, and no bicubic
  resize left in the IR (upstream's early return at 518x518 made traces size-locked);
- no hub access, and no transformers dependency in the export extra.
The computation follows the upstream reference (``depth_anything_v2/dpt.py``, ``dinov2.py``)
operation for operation, which the golden-output test in test/test_model_export.py checks.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
import torch.nn.functional as F

from depth_anything_ros.export.configs import EncoderConfig, ENCODERS

PATCH = 14
PRETRAINED_GRID = 37          # 518 / 14: the grid the position embedding was trained on
POS_INTERPOLATE_OFFSET = 0.1  # DINOv2's offset that avoids float rounding in the scale factor


# Rotates a per-head query or key, (B, heads, N, head_dim) -> same; None: no rotation.
Rotation = Callable[[torch.Tensor], torch.Tensor]


class Attention(nn.Module):
    """Multi-head self-attention.

    ``qk_norm`` adds DA3's per-head LayerNorm on queries and keys (torch's default eps, as
    upstream builds it); ``rotate`` (DA3's RoPE) then acts on the normalised q and k. With
    neither, the operations are V2's exactly, so V2 graphs do not change.
    """

    def __init__(self, dim: int, heads: int, qk_norm: bool = False) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.qk_norm = qk_norm
        if qk_norm:
            self.q_norm = nn.LayerNorm(dim // heads)
            self.k_norm = nn.LayerNorm(dim // heads)

    def forward(self, x: torch.Tensor, rotate: Rotation | None = None) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        if rotate is not None:
            q, k = rotate(q), rotate(k)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class SwiGLU(nn.Module):
    """vitg's feed-forward; hidden width rounded as DINOv2 does (2/3 of 4x, multiple of 8)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        hidden = (int(hidden * 2 / 3) + 7) // 8 * 8
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(x1) * x2)


class LayerScale(nn.Module):

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Block(nn.Module):

    def __init__(self, dim: int, heads: int, swiglu: bool, qk_norm: bool = False) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads, qk_norm)
        self.ls1 = LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = (SwiGLU if swiglu else Mlp)(dim, 4 * dim)
        self.ls2 = LayerScale(dim)

    def forward(self, x: torch.Tensor, rotate: Rotation | None = None) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x), rotate))
        return x + self.ls2(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=PATCH, stride=PATCH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class DinoV2(nn.Module):
    """The ViT encoder; returns normalised patch tokens of the requested blocks.

    Depth Anything 3's Large models use the same encoder without the training-only
    ``mask_token`` and with the final norm at torch's default eps (1e-5) instead of 1e-6.
    """

    def __init__(self, cfg: EncoderConfig, mask_token: bool = True,
                 norm_eps: float = 1e-6) -> None:
        super().__init__()
        dim = cfg.embed_dim
        self.patch_embed = PatchEmbed(dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, PRETRAINED_GRID ** 2 + 1, dim))
        if mask_token:  # training-only; kept for strict loading
            self.mask_token = nn.Parameter(torch.zeros(1, dim))
        self.blocks = nn.ModuleList(Block(dim, cfg.num_heads, cfg.swiglu) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(dim, eps=norm_eps)
        self._pos_cache: dict[tuple[int, int], torch.Tensor] = {}

    def pos_embed_for(self, grid_h: int, grid_w: int) -> torch.Tensor:
        """Position embedding for a grid, computed eagerly once per size.

        Cached outside autograd so that a trace sees a constant: the exported graph is
        exact for its size and carries no interpolation. Same formula as DINOv2 (bicubic,
        scale factor from the grid plus a 0.1 offset, no antialias).
        """
        key = (grid_h, grid_w)
        if key not in self._pos_cache:
            with torch.no_grad():
                self._pos_cache[key] = self._interpolate_pos(grid_h, grid_w).detach().clone()
        return self._pos_cache[key]

    def _interpolate_pos(self, grid_h: int, grid_w: int) -> torch.Tensor:
        return interpolate_pos_embed(self.pos_embed, grid_h, grid_w)

    def intermediate_tokens(self, x: torch.Tensor, layers: tuple[int, ...]) -> list[torch.Tensor]:
        grid_h, grid_w = x.shape[-2] // PATCH, x.shape[-1] // PATCH
        tokens = self.patch_embed(x)
        tokens = torch.cat((self.cls_token.expand(tokens.shape[0], -1, -1), tokens), dim=1)
        tokens = tokens + self.pos_embed_for(int(grid_h), int(grid_w)).to(tokens.dtype)
        outputs = []
        for index, block in enumerate(self.blocks):
            tokens = block(tokens)
            if index in layers:
                outputs.append(self.norm(tokens)[:, 1:])
        return outputs


def interpolate_pos_embed(pos_embed: torch.Tensor, grid_h: int, grid_w: int) -> torch.Tensor:
    """DINOv2's learned 37x37 (+cls) position embedding resampled to a patch grid.

    Bicubic, scale factor from the grid plus a 0.1 offset, no antialias, as upstream (V2 and
    DA3 alike); the cls entry is kept as it is.
    """
    pos = pos_embed.float()
    if (grid_h, grid_w) == (PRETRAINED_GRID, PRETRAINED_GRID):
        return pos
    dim = pos.shape[-1]
    grid = pos[:, 1:].reshape(1, PRETRAINED_GRID, PRETRAINED_GRID, dim).permute(0, 3, 1, 2)
    scale = ((grid_h + POS_INTERPOLATE_OFFSET) / PRETRAINED_GRID,
             (grid_w + POS_INTERPOLATE_OFFSET) / PRETRAINED_GRID)
    grid = F.interpolate(grid, scale_factor=scale, mode="bicubic", antialias=False)
    if grid.shape[-2:] != (grid_h, grid_w):
        raise RuntimeError(f"position grid {tuple(grid.shape[-2:])} != {(grid_h, grid_w)}")
    grid = grid.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, dim)
    return torch.cat((pos[:, :1], grid), dim=1)


class ResidualConvUnit(nn.Module):

    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.relu(self.conv1(F.relu(x)))) + x


class FusionBlock(nn.Module):
    """One top-down fusion step.

    ``lateral=False`` leaves out ``resConfUnit1``, which only the lateral input uses:
    V2 checkpoints store it even for refinenet4 (which has no lateral input), DA3's do not.
    """

    def __init__(self, features: int, lateral: bool = True) -> None:
        super().__init__()
        self.out_conv = nn.Conv2d(features, features, 1)
        if lateral:
            self.resConfUnit1 = ResidualConvUnit(features)  # noqa: N815 (official key name)
        self.resConfUnit2 = ResidualConvUnit(features)  # noqa: N815

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None,
                size: tuple[int, int] | None = None) -> torch.Tensor:
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        if size is None:
            size = (x.shape[-2] * 2, x.shape[-1] * 2)
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        return self.out_conv(x)


def output_conv(features: int, *tail: nn.Module) -> nn.Sequential:
    """Build the DPT output convolutions (conv3x3 -> ReLU -> conv1x1), then ``tail``."""
    return nn.Sequential(nn.Conv2d(features // 2, 32, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(32, 1, 1), *tail)


class Scratch(nn.Module):
    """The DPT decoder's convolutions: level adapters, fusion chain, output convolutions.

    ``output_conv2`` differs between heads (V2: one channel through ReLU or sigmoid; DA3
    Large: one channel, activation outside; DA3's DualDPT: depth and confidence logits), so
    the caller passes it in. ``lateral4`` is False for DA3 (see FusionBlock).
    """

    def __init__(self, out_channels: tuple[int, ...], features: int,
                 output_conv2: nn.Sequential, lateral4: bool = True) -> None:
        super().__init__()
        for i, channels in enumerate(out_channels, start=1):
            setattr(self, f"layer{i}_rn", nn.Conv2d(channels, features, 3, padding=1, bias=False))
        for i in range(1, 5):
            setattr(self, f"refinenet{i}", FusionBlock(features, lateral=i < 4 or lateral4))
        self.output_conv1 = nn.Conv2d(features, features // 2, 3, padding=1)
        self.output_conv2 = output_conv2

    def fuse(self, levels: list[torch.Tensor]) -> torch.Tensor:
        """Four projected levels (finest first) -> ``output_conv1`` features at level 1 x2."""
        l1, l2, l3, l4 = (getattr(self, f"layer{i + 1}_rn")(x) for i, x in enumerate(levels))
        path = self.refinenet4(l4, size=l3.shape[2:])
        path = self.refinenet3(path, l3, size=l2.shape[2:])
        path = self.refinenet2(path, l2, size=l1.shape[2:])
        path = self.refinenet1(path, l1)
        return self.output_conv1(path)


def dpt_projections(in_dim: int, out_channels: tuple[int, ...]) -> tuple[nn.ModuleList,
                                                                         nn.ModuleList]:
    """Build DPT's per-level 1x1 projections and resamplers (x4, x2, x1, /2 of the grid)."""
    c = out_channels
    projects = nn.ModuleList(nn.Conv2d(in_dim, ch, 1) for ch in c)
    resize_layers = nn.ModuleList([
        nn.ConvTranspose2d(c[0], c[0], 4, stride=4),
        nn.ConvTranspose2d(c[1], c[1], 2, stride=2),
        nn.Identity(),
        nn.Conv2d(c[3], c[3], 3, stride=2, padding=1),
    ])
    return projects, resize_layers


class DPTHead(nn.Module):

    def __init__(self, cfg: EncoderConfig, output_tail: tuple[nn.Module, ...],
                 lateral4: bool = True) -> None:
        super().__init__()
        self.projects, self.resize_layers = dpt_projections(cfg.embed_dim, cfg.out_channels)
        self.scratch = Scratch(cfg.out_channels, cfg.features,
                               output_conv(cfg.features, *output_tail), lateral4)

    def features(self, tokens: list[torch.Tensor], grid_h: int, grid_w: int) -> torch.Tensor:
        """Fused features at the input resolution, before ``output_conv2``."""
        levels = []
        for i, t in enumerate(tokens):
            x = t.permute(0, 2, 1).reshape(t.shape[0], t.shape[-1], grid_h, grid_w)
            levels.append(self.resize_layers[i](self.projects[i](x)))
        return F.interpolate(self.scratch.fuse(levels), size=(grid_h * PATCH, grid_w * PATCH),
                             mode="bilinear", align_corners=True)

    def forward(self, tokens: list[torch.Tensor], grid_h: int, grid_w: int) -> torch.Tensor:
        return self.scratch.output_conv2(self.features(tokens, grid_h, grid_w))


class DepthAnythingV2(nn.Module):
    """Input: (N,3,H,W) ImageNet-normalised RGB, H and W multiples of 14.

    Output: (N,H,W) relative inverse depth (ReLU) or metres (sigmoid x max_depth).
    """

    def __init__(self, encoder: str, max_depth: float | None = None) -> None:
        super().__init__()
        self.config = ENCODERS[encoder]
        self.max_depth = max_depth
        self.pretrained = DinoV2(self.config)
        activation = nn.Sigmoid() if max_depth is not None else nn.ReLU()
        self.depth_head = DPTHead(self.config, output_tail=(activation, nn.Identity()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid_h, grid_w = x.shape[-2] // PATCH, x.shape[-1] // PATCH
        tokens = self.pretrained.intermediate_tokens(x, self.config.intermediate_layers)
        depth = self.depth_head(tokens, int(grid_h), int(grid_w))
        depth = depth * self.max_depth if self.max_depth is not None else F.relu(depth)
        return depth.squeeze(1)
