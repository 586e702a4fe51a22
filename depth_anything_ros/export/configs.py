"""Architecture constants of the four Depth Anything V2 encoders.

Values from the upstream model zoo (DepthAnything/Depth-Anything-V2, ``dpt.py`` and
``dinov2.py``); they decide every tensor shape, so the strict key check catches a mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EncoderConfig:
    name: str
    embed_dim: int
    depth: int
    num_heads: int
    features: int
    out_channels: tuple[int, int, int, int]
    intermediate_layers: tuple[int, int, int, int]
    swiglu: bool = False           # vitg's FFN is SwiGLU instead of GELU MLP
    licence: str = "CC-BY-NC-4.0"
    params_millions: float = 0.0
    public_weights: bool = True

    @property
    def hf_repo(self) -> str:
        return f"depth-anything/Depth-Anything-V2-{_SIZE_WORD[self.name]}"

    def checkpoint_file(self, metric: str | None) -> str:
        if metric is None:
            return f"depth_anything_v2_{self.name}.pth"
        return f"depth_anything_v2_metric_{_METRIC_DATASET[metric]}_{self.name}.pth"

    def checkpoint_repo(self, metric: str | None) -> str:
        if metric is None:
            return self.hf_repo
        word = _SIZE_WORD[self.name]
        return (f"depth-anything/Depth-Anything-V2-Metric-"
                f"{_METRIC_DATASET[metric].capitalize()}-{word}")


_SIZE_WORD = {"vits": "Small", "vitb": "Base", "vitl": "Large", "vitg": "Giant"}
_METRIC_DATASET = {"indoor": "hypersim", "outdoor": "vkitti"}

ENCODERS: dict[str, EncoderConfig] = {
    "vits": EncoderConfig("vits", 384, 12, 6, 64, (48, 96, 192, 384), (2, 5, 8, 11),
                          licence="Apache-2.0", params_millions=24.8),
    "vitb": EncoderConfig("vitb", 768, 12, 12, 128, (96, 192, 384, 768), (2, 5, 8, 11),
                          params_millions=97.5),
    "vitl": EncoderConfig("vitl", 1024, 24, 16, 256, (256, 512, 1024, 1024), (4, 11, 17, 23),
                          params_millions=335.3),
    "vitg": EncoderConfig("vitg", 1536, 40, 24, 384, (1536, 1536, 1536, 1536), (9, 19, 29, 39),
                          swiglu=True, params_millions=1311.0, public_weights=False),
}
