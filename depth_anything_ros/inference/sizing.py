"""The network input size rule, shared by the exporter (which freezes it) and the engine."""

from __future__ import annotations

PATCH = 14
DEFAULT_SIDE = 518


def network_size(image_height: int, image_width: int, side: int = DEFAULT_SIDE) -> tuple[int, int]:
    """Upstream ``image2tensor`` sizing: keep aspect ratio, shorter side to ``side``.

    Both sides are rounded to the nearest multiple of 14 (never below ``side``'s multiple).

    Matches upstream's ``Resize(keep_aspect_ratio=True, ensure_multiple_of=14,
    resize_method='lower_bound')``: 480x640 -> 518x686, 360x640 -> 518x924.
    """
    if image_height <= 0 or image_width <= 0:
        raise ValueError(f"image size must be positive, got {image_height}x{image_width}")
    scale_h = side / image_height
    scale_w = side / image_width
    # lower_bound: the larger scale wins so both sides reach at least `side`.
    scale = max(scale_h, scale_w)
    return (_multiple_at_least(scale * image_height, side),
            _multiple_at_least(scale * image_width, side))


def _multiple_at_least(value: float, min_value: int) -> int:
    rounded = int(round(value / PATCH) * PATCH)
    if rounded < min_value:
        rounded = int(-(-value // PATCH) * PATCH)  # ceil to a multiple
    return rounded


def check_network_size(height: int, width: int) -> None:
    """Raise with the nearest valid sizes when a requested size is not a multiple of 14."""
    for name, value in (("height", height), ("width", width)):
        if value <= 0 or value % PATCH:
            lower = max(PATCH, value // PATCH * PATCH)
            raise ValueError(
                f"network {name} {value} is not a positive multiple of {PATCH}; "
                f"use {lower} or {lower + PATCH}")


def parse_hw(text: str) -> tuple[int, int]:
    """Parse ``HxW`` (e.g. ``480x640``)."""
    try:
        h, w = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"expected HxW such as 480x640, got {text!r}") from None
    if h <= 0 or w <= 0:
        raise ValueError(f"size must be positive, got {text!r}")
    return h, w
