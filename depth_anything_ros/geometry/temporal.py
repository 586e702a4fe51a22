"""Per-pixel temporal smoothing of a depth stream that forgets what moved.

A monocular depth network re-estimates every frame from scratch, so a static wall flickers
by a few percent from frame to frame. Averaging over time removes that flicker, but a plain
average drags a moving object's depth along behind it (a ghost trail) and smears the whole
image when the camera turns. This filter therefore averages a pixel only while its depth
agrees with the running estimate, takes the new value outright where it does not, and
starts over everywhere when the camera image says the view itself has moved. The camera
image is used because the depth node has no odometry; a coarse grayscale thumbnail is
enough to tell "the view moved" from "something in the view moved", at a quarter of the
cost of the per-pixel update.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# Thumbnail used to detect camera motion: 8x8-pixel cells at VGA. Averaging each cell
# suppresses sensor noise (a cell's noise is 1/8 of a pixel's), while a shift of a few
# cells still changes most of them.
_THUMB_SIZE = (80, 60)  # (width, height), the order cv2.resize takes


class TemporalFilter:
    """Per-pixel moving average of depth, reset per pixel on change and wholly on camera motion.

    Per pixel, with x the new depth and y the running estimate (both metres):

    * static, ``|x - y| < change_ratio * y``: ``y += w * (x - y)`` with
      ``w = max(a, 1 / n)``, n the number of frames since the pixel's last reset, this
      one included;
    * changed (including x or y NaN or infinite): ``y = x`` and n = 1, so NaN input makes
      the output NaN there and the next valid depth is taken as is.

    ``a = 1 - exp(-dt / time_constant_s)`` comes from the time between frames, so the
    smoothing, in seconds, does not depend on the node's frame rate, and a long gap between
    frames (a → 1) forgets the old estimate by itself. ``dt`` is the difference of the
    ``stamp_s`` arguments, or ``frame_period_s`` when a stamp is missing. A stamp that does
    not increase (a looped bag, a restarted camera) resets the filter.

    The ``1 / n`` term makes a freshly reset pixel a plain mean of its few samples until
    the EMA weight takes over: with the EMA weight alone, the one sample taken at the reset
    would dominate for a whole time constant, and that sample is often a blend of object and
    background along an edge the network has softened, which would then linger as a faint
    ghost. The mean also has the least noise a pixel of that age can have.

    A pixel that stays "static" moves towards each new input, so the output is never
    further than ``change_ratio`` of the previous estimate from the newest input: drift that
    the change test lets through (a robot closing on a wall) lags by at most that much.

    The whole state is reset when the mean absolute difference between consecutive 80x60
    grayscale thumbnails of the 8-bit camera image exceeds ``motion_threshold`` grey levels,
    after subtracting the mean difference so that an auto-exposure step, which changes
    brightness but not geometry, does not count as motion. ``last_motion`` holds the latest
    value of that statistic, for tuning the threshold on real footage.

    Defaults (the numbers in brackets are measured in test_temporal's rendered scene, 2 %
    Gaussian depth noise, 30 fps):

    * ``time_constant_s = 0.5``: at the 5-7 fps this node reaches on a CPU, a is 0.25-0.33
      and the steady-state per-pixel noise falls 2.3-2.6x; at 30 fps (a = 0.065) about
      5.5x [4.9x after 30 frames]. Lag only matters for what the change test lets through,
      which is bounded as above, so a longer constant costs little; much longer and a
      pixel takes many seconds to settle after each reset.
    * ``change_ratio = 0.08``: four times an assumed 2 % frame-to-frame flicker on a static
      scene, so noise rarely resets a pixel, yet an object 8 % nearer or farther than what
      it passes in front of is taken at once. At 0.06, noise tails reset young pixels so
      often that much of the smoothing is lost [flicker 13x less at 0.08, 4.6x at 0.06;
      error after 30 frames 4.9x less, 3.3x]; at 0.10, more of a blurred edge leaks into
      the average [worst pixel on a moving object 11 % off, against 10 % at 0.08].
    * ``motion_threshold = 4``: a static camera gives 0.3-0.5 grey levels (8-bit noise
      of 3-4 averaged over a cell), an 80x80 px object crossing 20 px a frame about 1,
      panning a textured view 60 px about 30, and panning flat-coloured synthetic
      interiors (a few big uniform rectangles, test/scenes.py) 60 px gave 3.8-14, so 4
      still catches most of those while leaving room for large objects moving in the view.
    * ``frame_period_s = 1 / 30``: the period of a typical camera, used only without stamps.

    Not thread-safe: it keeps state between calls, so frames must arrive in order from one
    thread.
    """

    def __init__(self, time_constant_s: float = 0.5, change_ratio: float = 0.08,
                 motion_threshold: float = 4.0, frame_period_s: float = 1.0 / 30.0) -> None:
        for name, value in (("time_constant_s", time_constant_s), ("change_ratio", change_ratio),
                            ("motion_threshold", motion_threshold),
                            ("frame_period_s", frame_period_s)):
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"{name} must be finite and > 0, got {value}")
        self.time_constant_s = float(time_constant_s)
        self.change_ratio = float(change_ratio)
        self.motion_threshold = float(motion_threshold)
        self.frame_period_s = float(frame_period_s)
        self.last_motion = 0.0
        # Per-pixel state and work buffers, allocated for one depth size by _restart.
        self._estimate = np.empty((0, 0), np.float32)
        self._count = self._diff = self._work = self._bound = self._estimate
        self._static = self._changed = np.empty((0, 0), np.bool_)
        self._thumb: np.ndarray | None = None
        self._stamp: float | None = None
        self._primed = False

    def reset(self) -> None:
        """Forget all state, so the next output equals its input (e.g. after a seek)."""
        self._thumb = None
        self._stamp = None
        self._primed = False

    def __call__(self, depth: np.ndarray, image_bgr: np.ndarray,
                 stamp_s: float | None = None) -> np.ndarray:
        """Smoothed (H, W) float32 depth for an (H, W) depth and the camera image it came from.

        ``image_bgr`` is (h, w, 3) BGR or (h, w) mono, at any resolution (only its thumbnail
        is used). The result is a new array the caller may keep or modify; the filter's own
        state is never handed out, so a publisher that holds on to a frame cannot corrupt
        the next one.
        """
        if depth.ndim != 2:
            raise ValueError(f"depth must be 2-D (H, W), got shape {depth.shape}")
        depth = np.ascontiguousarray(depth, np.float32)
        moved = self._camera_moved(image_bgr)
        weight = self._weight(stamp_s)
        if moved or weight is None or not self._primed or self._estimate.shape != depth.shape:
            self._restart(depth)
        else:
            self._update(depth, weight)
        return self._estimate.copy()

    def _camera_moved(self, image_bgr: np.ndarray) -> bool:
        """Compare this image's thumbnail with the previous one, then keep it for the next."""
        if image_bgr.ndim == 3:
            image_bgr = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
        thumb = cv2.resize(image_bgr, _THUMB_SIZE, interpolation=cv2.INTER_AREA)
        thumb = thumb.astype(np.float32)
        previous, self._thumb = self._thumb, thumb
        if previous is None:
            self.last_motion = 0.0
            return False
        delta = thumb - previous
        delta -= delta.mean()
        self.last_motion = float(np.abs(delta).mean())
        return self.last_motion > self.motion_threshold

    def _weight(self, stamp_s: float | None) -> float | None:
        """EMA weight for the time since the last frame; None when time went backwards."""
        dt = self.frame_period_s
        if stamp_s is not None:
            previous, self._stamp = self._stamp, float(stamp_s)
            if previous is not None:
                dt = self._stamp - previous
                if not dt > 0.0:
                    return None
        return -math.expm1(-dt / self.time_constant_s)

    def _restart(self, depth: np.ndarray) -> None:
        """Take the frame as the new estimate, reallocating the buffers if its size changed."""
        if self._estimate.shape != depth.shape:
            self._estimate = np.empty(depth.shape, np.float32)
            self._count = np.empty(depth.shape, np.float32)
            self._diff = np.empty(depth.shape, np.float32)
            self._work = np.empty(depth.shape, np.float32)
            self._bound = np.empty(depth.shape, np.float32)
            self._static = np.empty(depth.shape, np.bool_)
            self._changed = np.empty(depth.shape, np.bool_)
        np.copyto(self._estimate, depth)
        self._count.fill(1.0)
        self._primed = True

    def _update(self, depth: np.ndarray, ema_weight: float) -> None:
        """One averaging step where depth agrees with the estimate, a copy of depth elsewhere."""
        estimate, count, diff, work = self._estimate, self._count, self._diff, self._work
        changed = self._changed
        # inf - inf gives NaN with a warning; such pixels are changed and overwritten below.
        with np.errstate(invalid="ignore"):
            np.subtract(depth, estimate, out=diff)
            np.abs(diff, out=work)
            np.multiply(estimate, np.float32(self.change_ratio), out=self._bound)
            # NaN on either side fails the comparison, so NaN pixels count as changed; so
            # does an infinite estimate (inf < inf is false), which would never recover.
            np.less(work, self._bound, out=self._static)
            np.logical_not(self._static, out=changed)
            # n = n + 1 where static, 1 where changed, without a branchy masked store.
            np.multiply(count, self._static, out=count)
            np.add(count, np.float32(1.0), out=count)
            np.reciprocal(count, out=work)
            np.maximum(work, np.float32(ema_weight), out=work)
            np.multiply(diff, work, out=diff)
            np.add(estimate, diff, out=estimate)
        # OpenCV's masked copy costs the same for any mask; numpy's copyto(where=) is up
        # to 15x slower on a scattered one (2 ms at VGA when a third of the pixels changed).
        cv2.copyTo(depth, changed.view(np.uint8), estimate)
