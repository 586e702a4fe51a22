"""What a frame or message can go wrong with: rejection reasons, warnings, and the note type.

One list for every caller (node, bag tool, CLI), so /diagnostics and the bag tool's
summary count the same reasons under the same names.
"""

from __future__ import annotations

from typing import NamedTuple

from depth_anything_ros.geometry.reference import (REFERENCE_ASPECT, REFERENCE_EMPTY,
                                                   REFERENCE_EXTRINSIC, REFERENCE_NON_FINITE)
from depth_anything_ros.pipeline.messages.image_input import IMAGE_REJECTIONS

REJECT_CAMERA_INFO_INVALID = "camera_info_invalid"      # zero/non-finite focal length, bad size
REJECT_CAMERA_INFO_SIZE = "camera_info_size_mismatch"   # neither the image's size nor a scaling
REJECT_STAMP_BACKWARDS = "stamp_backwards"
# Metric references (scale_source depth/points): undecodable, unusable, or too late.
REJECT_REFERENCE_ENCODING = "reference_encoding"        # not 32FC1/16UC1, bad step or length
REJECT_REFERENCE_CLOUD = "reference_cloud_layout"       # no float32 x, y, z; bad sizes
REJECT_REFERENCE_TOO_OLD = "reference_too_old"          # older than reference_max_age
REFERENCE_REJECTIONS = (REJECT_REFERENCE_ENCODING, REJECT_REFERENCE_CLOUD, REFERENCE_ASPECT,
                        REFERENCE_EMPTY, REFERENCE_NON_FINITE, REFERENCE_EXTRINSIC,
                        REJECT_REFERENCE_TOO_OLD)
REJECTION_KINDS = IMAGE_REJECTIONS + (REJECT_CAMERA_INFO_INVALID, REJECT_CAMERA_INFO_SIZE,
                                      REJECT_STAMP_BACKWARDS) + REFERENCE_REJECTIONS
# Warnings (not rejections) a frame can raise; keys for the caller's rate limiter.
WARN_NO_CALIBRATION = "no_camera_info"
WARN_CALIBRATION_SCALED = "camera_info_scaled"
# A distortion rectify cannot apply (a model other than plumb_bob, rational_polynomial or
# equidistant, binning, a ROI): the frame is still processed, unrectified, so it is a
# warning, not a rejection.
WARN_NOT_RECTIFYING = "camera_info_distortion"
WARN_ALIGNMENT_HELD = "alignment_held"          # no reference for the frame: last fit kept
WARN_ALIGNMENT_REFUSED = "alignment_refused"    # a fit refused: last fit kept
WARN_ALIGNMENT_NONE_YET = "alignment_none_yet"  # relative model, no fit yet: no metres


class Note(NamedTuple):
    """Something the caller should count or log.

    A rejection (``key`` is one of REJECTION_KINDS) or a warning (``key`` is a WARN_* name).
    """

    key: str
    text: str

    @property
    def is_rejection(self) -> bool:
        return self.key in REJECTION_KINDS
