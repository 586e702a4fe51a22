"""Metres from Depth Anything 3 Metric's output: the camera's focal length at the network input.

DA3 Metric predicts depth as seen by a camera with a 300 px focal length at the network
input; metres = focal * value / 300 (upstream README FAQ, utils/alignment.py
``apply_metric_scaling``), focal = mean of fx and fy there. Upstream rescales the
intrinsics at each resize, row 0 by the width ratio and row 1 by the height ratio
(utils/io/input_processor.py ``_resize_ixt``); the product of its two resizes' ratios is
the ratio of the final size to the image's, which is what is used here.
"""

from __future__ import annotations

from depth_anything_ros.inference.metadata import FOCAL_REFERENCE


def focal_depth_factor(fx: float, fy: float, image_size: tuple[int, int],
                       network_size: tuple[int, int],
                       focal_reference: float = FOCAL_REFERENCE) -> float:
    """Metres per output unit for a ``focal_depth`` output.

    ``fx``, ``fy`` are the intrinsics (pixels) of the image fed to the engine, of
    ``image_size`` (height, width); ``network_size`` (height, width) is the IR's input.
    """
    (img_h, img_w), (net_h, net_w) = image_size, network_size
    if min(img_h, img_w, net_h, net_w) <= 0 or fx <= 0 or fy <= 0 or focal_reference <= 0:
        raise ValueError(f"focal factor needs positive values, got fx={fx} fy={fy} image "
                         f"{img_h}x{img_w} network {net_h}x{net_w} reference {focal_reference}")
    return (fx * net_w / img_w + fy * net_h / img_h) / 2.0 / focal_reference
