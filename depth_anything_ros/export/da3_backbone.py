"""The DINOv2 encoder of Depth Anything 3 Small/Base, frozen at one input size.

What it adds to V2's encoder (upstream ``model/dinov2/vision_transformer.py`` and
``layers/rope.py``, facts listed in test/reference/da3/README.md):
- from block ``ALT_START`` on, q/k LayerNorm and 2D rotary position embedding (RoPE);
- before that block, the cls token is replaced by the learned camera token;
- blocks alternate between per-view ("local") and all-views ("global") attention. With one
  image both attend over the same tokens and differ only in their RoPE positions, so a
  global block is a local block with another rotation table;
- each output level is the last local block's tokens beside this block's (normalised)
  tokens, twice the embedding width.

The RoPE tables depend only on the patch grid, so they are computed once here as constant
buffers rather than in the graph: upstream builds them with ``torch.cartesian_prod``, which
has no ONNX export, and with a data-dependent table length.
"""

from __future__ import annotations

import torch
from torch import nn

from depth_anything_ros.export.configs import EncoderConfig
from depth_anything_ros.export.network import (Block, interpolate_pos_embed, PATCH, PatchEmbed,
                                               PRETRAINED_GRID)

ALT_START = 4        # first block with camera token, q/k norm, RoPE and alternating attention
ROPE_FREQUENCY = 100.0
NORM_EPS = 1e-5      # the final norm uses torch's default eps (blocks keep DINOv2's 1e-6)


def patch_positions(grid_h: int, grid_w: int, spread: bool) -> torch.Tensor:
    """(1 + grid_h * grid_w, 2) integer (y, x) RoPE positions; token 0 sits at (0, 0).

    ``spread``: local blocks put patch (y, x) at (y + 1, x + 1), row-major; global blocks
    put every patch at (1, 1) (upstream's ``pos_nodiff``).
    """
    if spread:
        ys, xs = torch.meshgrid(torch.arange(grid_h), torch.arange(grid_w), indexing="ij")
        patches = torch.stack((ys.reshape(-1), xs.reshape(-1)), dim=-1) + 1
    else:
        patches = torch.ones(grid_h * grid_w, 2, dtype=torch.long)
    return torch.cat((torch.zeros(1, 2, dtype=torch.long), patches))


class Rope2d(nn.Module):
    """Rotary embedding of a per-head query or key by fixed 2D token positions.

    The first half of head_dim is rotated by the y position, the second half by x, each
    half rotate-half style (pairs ``i`` and ``i + quarter``) with upstream's frequencies.
    The sign of rotate-half is folded into the sine table, so the graph is two multiplies,
    a quarter swap and an add, and each value is the one upstream computes.
    """

    def __init__(self, head_dim: int, positions: torch.Tensor) -> None:
        super().__init__()
        half = head_dim // 2
        exponents = torch.arange(0, half, 2).float() / half
        inv_freq = 1.0 / (ROPE_FREQUENCY ** exponents)
        angles = positions.float()[:, :, None] * inv_freq       # (N, 2: y x, quarter)
        cos, sin = angles.cos(), angles.sin()
        self.register_buffer("cos", torch.cat((cos[:, 0], cos[:, 0], cos[:, 1], cos[:, 1]), -1),
                             persistent=False)
        self.register_buffer("sin", torch.cat((-sin[:, 0], sin[:, 0], -sin[:, 1], sin[:, 1]), -1),
                             persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        a, b, c, d = t.chunk(4, dim=-1)
        return t * self.cos + torch.cat((b, a, d, c), dim=-1) * self.sin


class Da3Encoder(nn.Module):
    """Input (B, 3, H, W) at the frozen size; output per out layer (B, patches, 2 * dim)."""

    def __init__(self, cfg: EncoderConfig, out_layers: tuple[int, ...], height: int,
                 width: int) -> None:
        super().__init__()
        dim = cfg.embed_dim
        self.grid = (height // PATCH, width // PATCH)
        self.out_layers = out_layers
        self.patch_embed = PatchEmbed(dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.camera_token = nn.Parameter(torch.zeros(1, 2, dim))  # [reference view, others]
        self.pos_embed = nn.Parameter(torch.zeros(1, PRETRAINED_GRID ** 2 + 1, dim))
        self.blocks = nn.ModuleList(Block(dim, cfg.num_heads, swiglu=False,
                                          qk_norm=i >= ALT_START) for i in range(cfg.depth))
        self.norm = nn.LayerNorm(dim, eps=NORM_EPS)
        head_dim = dim // cfg.num_heads
        self.local_rope = Rope2d(head_dim, patch_positions(*self.grid, spread=True))
        self.global_rope = Rope2d(head_dim, patch_positions(*self.grid, spread=False))
        self._pos: torch.Tensor | None = None
        self.register_load_state_dict_post_hook(self._forget_pos)

    @staticmethod
    def _forget_pos(module: Da3Encoder, incompatible_keys) -> None:
        module._pos = None

    def frozen_pos_embed(self) -> torch.Tensor:
        """Position embedding at the frozen grid, computed once per loaded weights.

        Outside autograd, so a trace sees a constant and the IR carries no bicubic resize.
        """
        if self._pos is None:
            with torch.no_grad():
                self._pos = interpolate_pos_embed(self.pos_embed, *self.grid).detach().clone()
        return self._pos

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        tokens = self.patch_embed(x)
        batch = tokens.shape[0]
        tokens = torch.cat((self.cls_token.expand(batch, -1, -1), tokens), dim=1)
        tokens = tokens + self.frozen_pos_embed().to(tokens.dtype)
        local = tokens
        outputs = []
        for index, block in enumerate(self.blocks):
            if index < ALT_START:
                tokens = block(tokens)
            else:
                if index == ALT_START:
                    camera = self.camera_token[:, :1].expand(batch, -1, -1)
                    tokens = torch.cat((camera, tokens[:, 1:]), dim=1)
                is_global = index % 2 == 1
                tokens = block(tokens, self.global_rope if is_global else self.local_rope)
            if index < ALT_START or index % 2 == 0:
                local = tokens
            if index in self.out_layers:
                outputs.append(torch.cat((local[:, 1:], self.norm(tokens[:, 1:])), dim=-1))
        return outputs
