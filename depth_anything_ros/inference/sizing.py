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


DA3_LONG_SIDE = 504  # upstream's default process_res (api.py)


def da3_resize_steps(image_height: int, image_width: int,
                     long_side: int = DA3_LONG_SIDE) -> list[tuple[int, int]]:
    """Return the (height, width) of each resize upstream DA3 makes: none, one or two.

    ``upper_bound_resize`` (utils/io/input_processor.py): scale the longer side to
    ``long_side`` with sides ``round(side * scale)`` (Python's round), skipped when it is
    already there; then each side to its nearest multiple of 14 (ties up), skipped when
    both already are. 480x640 -> [378x504]; 360x640 -> [284x504, 280x504].
    """
    if image_height <= 0 or image_width <= 0:
        raise ValueError(f"image size must be positive, got {image_height}x{image_width}")
    steps = []
    height, width = image_height, image_width
    if max(height, width) != long_side:
        scale = long_side / float(max(height, width))
        height, width = max(1, int(round(height * scale))), max(1, int(round(width * scale)))
        steps.append((height, width))
    multiple = (_nearest_multiple(height), _nearest_multiple(width))
    if min(multiple) < PATCH:
        raise ValueError(f"image {image_height}x{image_width} is too elongated for a "
                         f"{long_side} px long side: a side would be under {PATCH} px")
    if multiple != (height, width):
        steps.append(multiple)
    return steps


def da3_network_size(image_height: int, image_width: int,
                     long_side: int = DA3_LONG_SIDE) -> tuple[int, int]:
    """Return the network size upstream DA3 feeds for an image size (480x640 -> 378x504)."""
    steps = da3_resize_steps(image_height, image_width, long_side)
    return steps[-1] if steps else (image_height, image_width)


def _nearest_multiple(value: int) -> int:
    down = value // PATCH * PATCH
    up = down + PATCH
    return up if up - value <= value - down else down
