"""Metric alignment of a depth network's output to a sparse reference, filtered over time.

Depth Anything's relative models predict inverse depth up to an unknown affine map (metric
inverse depth = scale * output + shift), its metric models depth up to a scale that is right
only on average over their training scenes. A sparse metric reference (reference.py) gives
the true depth at some pixels; ``fit`` finds the map robustly, ``AlignmentFilter`` smooths
it over time, and ``ScaleAligner`` chains both for one camera.

Errors are measured as relative depth error |d_fit - d_ref| / d_ref throughout: a network's
errors, a reference's noise and what a robot can tolerate all grow with distance, so a
1 cm miss at 0.5 m and a 20 cm miss at 10 m count the same.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Optional

import numpy as np

from depth_anything_ros.geometry.reference import ReferenceSamples

TOO_FEW_POINTS = "too_few_points"
DEGENERATE = "degenerate"
NON_POSITIVE_SCALE = "non_positive_scale"
RESIDUAL_TOO_LARGE = "residual_too_large"

# RANSAC hypotheses for the affine fit, each from two random samples. With 30 % outliers a
# pair is clean with probability 0.49, so 64 pairs all fail with probability 0.51^64 ~ 1e-19,
# and at 50 % outliers still 0.75^64 ~ 1e-8. The pairs come from one fixed-seed table, so
# the same samples always give the same fit.
_HYPOTHESES = 64
_PAIRS = np.random.default_rng(0).random((2, _HYPOTHESES))
# Samples each hypothesis is scored on: the median of 256 residuals locates a hypothesis's
# inlier error to about a tenth of itself, which is all the choice between hypotheses needs
# (least squares on all inliers refines it), and keeps scoring 64 hypotheses near 0.1 ms.
_SCORED = 256
# Least-squares rounds after RANSAC, each re-selecting the inliers with the previous round's
# fit. On the test scenes the inlier set stops changing after the first; the other two cost
# about 30 us each and settle samples that sit near the threshold.
_REFINE_ROUNDS = 3
# Inliers lie within 3 robust standard deviations of the fit (1.4826 * median absolute
# residual, the Gaussian-consistent scale), so about 0.3 % of genuinely good samples are
# lost; the threshold adapts to how well the network and the reference agree, which makes
# the residual check meaningful: pure noise gives a wide threshold and a large residual
# rather than a few lucky "inliers".
_INLIER_SIGMAS = 3.0
_MAD_TO_SIGMA = 1.4826
# The threshold never drops below 2 % relative error: a network is not more accurate than
# that, and a tighter threshold on an almost exact reference would only discard good samples.
_MIN_THRESHOLD = 0.02
# An affine fit needs the inliers' inverse depths to vary by at least 5 % (standard deviation
# over mean; inliers hold no gross outliers, so the plain statistics serve): the shift is
# where the fitted line meets the axis, and from a narrower spread the network's few-percent
# errors alone would move it by tens of percent. A wall facing the camera varies by about
# the reference's noise (1-2 %); one turned 10 degrees away, seen with a 60-degree field of
# view, by about 6 %.
_MIN_INVERSE_VARIATION = 0.05
# Pixels of the prediction sampled for its normalisation: a median of 16k values moves by
# well under 1 % between frames of a static scene, at a tenth of a millisecond.
_NORMALIZATION_SAMPLES = 16384


class FitRefused(ValueError):
    """Say why no trustworthy fit came from this frame; ``reason`` is one of the constants.

    A refused frame keeps the last good fit (ScaleAligner), which is usually the right scale
    still; the reason tells the user whether the reference, the view or the network is at
    fault.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Normalization:
    """Centre and spread that map a prediction to (prediction - centre) / spread."""

    centre: float
    spread: float


@dataclass(frozen=True)
class ScaleFit:
    """Map from the network's output to metres, and how well the reference agreed with it.

    ``inverse``: metric inverse depth = scale * output + shift (relative models); otherwise
    depth = scale * output and shift is 0 (metric models). ``inliers`` is how many reference
    samples agreed, ``residual`` their median relative depth error.
    """

    scale: float
    shift: float
    inverse: bool
    inliers: int
    residual: float

    def depth(self, prediction: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Return the metres (float32) that ``prediction`` maps to, into ``out`` if given.

        NaN (REP 117 invalid) where the fitted depth is not positive and finite: an inverse
        depth <= 0 lies at or beyond infinity under the fit and has no metric depth.
        ``out`` may be ``prediction`` itself.
        """
        prediction = np.asarray(prediction, np.float32)
        if out is None:
            out = np.empty(prediction.shape, np.float32)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            np.multiply(prediction, np.float32(self.scale), out=out)
            if self.inverse:
                np.add(out, np.float32(self.shift), out=out)
                # 1/q is negative for q < 0, infinite for q = 0 and 0 for q = inf, so the
                # one test on the result below also catches every unusable inverse depth.
                np.reciprocal(out, out=out)
            unusable = out <= 0
            unusable |= out == np.inf
        out[unusable] = np.nan
        return out

    def in_raw_units(self, norm: Normalization) -> ScaleFit:
        """Return this fit, made on normalised predictions, as a fit of the raw predictions."""
        scale = self.scale / norm.spread
        shift = self.shift - self.scale * norm.centre / norm.spread if self.inverse else 0.0
        return ScaleFit(scale=scale, shift=shift, inverse=self.inverse, inliers=self.inliers,
                        residual=self.residual)


def normalization(prediction: np.ndarray, inverse: bool) -> Normalization:
    """Return robust statistics of a whole (H, W) prediction, to divide its global scale out.

    Relative models: centre = median, spread = mean absolute deviation from the median, the
    normalisation of Depth Anything's scale-and-shift-invariant training loss. Metric
    models: centre = 0, spread = median. Only finite positive pixels count (0 is the far end
    of a relative model's output), on an even grid of about 16k of them.

    Why: the network re-estimates its output's scale (and shift) every frame, and that
    global change is what users see as flicker. Fitted to normalised predictions, the map
    describes the scene's own metric scale, which changes only when the scene does, so the
    temporal filter averages a steady quantity and the network's jitter never reaches the
    output. The trade-off: normalised predictions depend on what the view contains, so
    turning towards a nearer or farther scene changes the fitted map as well; the filter's
    change test (AlignmentFilter) restarts it then instead of blending two views.

    Raises FitRefused (degenerate) for a prediction with no spread to normalise by.
    """
    prediction = np.asarray(prediction)
    if prediction.ndim != 2:
        raise ValueError(f"prediction must be 2-D (H, W), got shape {prediction.shape}")
    stride = max(1, int(math.sqrt(prediction.size / _NORMALIZATION_SAMPLES)))
    grid = prediction[::stride, ::stride]
    valid = grid > 0
    valid &= grid < np.inf
    values = grid[valid].astype(np.float32)
    if values.size < 2:
        raise FitRefused(DEGENERATE, f"The prediction has {values.size} finite positive "
                         f"pixel(s) among the {grid.size} sampled; at least 2 are needed to "
                         "normalise it before fitting.")
    half = values.size // 2
    median = float(np.partition(values, half)[half])
    if inverse:
        centre = median
        values -= np.float32(median)
        spread = float(np.abs(values, out=values).mean(dtype=np.float64))
    else:
        centre, spread = 0.0, median
    if not spread > 0.0:
        raise FitRefused(DEGENERATE, f"The prediction is constant ({median:.6g}) over its "
                         f"{values.size} sampled finite positive pixels, so it holds no depth "
                         "structure to fit.")
    return Normalization(centre=centre, spread=spread)


def fit(prediction: np.ndarray, reference_depth: np.ndarray, inverse: bool, min_points: int,
        max_residual: float) -> ScaleFit:
    """Fit the network's output at N samples to their reference depths, robustly.

    ``prediction`` and ``reference_depth`` (metres) are (N,); pairs with a non-finite
    prediction or a depth that is not positive and finite are left out. Affine (``inverse``):
    RANSAC over pairs of samples picks the hypothesis with the least median relative error
    (robust to up to half the samples being outliers: LiDAR through glass, thin poles,
    mixed pixels behind foreground edges, obstacles on an assumed floor), then least squares
    on its inliers minimises sum (d * (s p + t) - 1)^2, the relative inverse-depth error,
    which to first order is the relative depth error. Scale-only: the median of the depth
    ratios starts the same refinement. Raises FitRefused when too few samples agree
    (fewer than ``min_points``), when the inliers cannot fix both scale and shift, when the
    scale is not positive, or when the inliers' median relative depth error exceeds
    ``max_residual``.
    """
    p = np.asarray(prediction, np.float64).ravel()
    d = np.asarray(reference_depth, np.float64).ravel()
    if p.shape != d.shape:
        raise ValueError(f"prediction has {p.size} samples but reference_depth {d.size}")
    usable = np.isfinite(p) & (d > 0) & (d < np.inf)
    if not usable.all():
        p, d = p[usable], d[usable]
    needed = max(int(min_points), 2 if inverse else 1)
    if p.size < needed:
        raise FitRefused(TOO_FEW_POINTS, f"Only {p.size} usable reference samples; at least "
                         f"{needed} are needed for a fit.")
    if inverse:
        scale, shift = _affine_ransac(p, d)
    else:
        with np.errstate(divide="ignore"):
            scale, shift = _median(d / p), 0.0
    inliers, count = _inliers(p, d, scale, shift, inverse, needed)
    for _ in range(_REFINE_ROUNDS):
        scale, shift = _least_squares(p[inliers], d[inliers], inverse)
        inliers, count = _inliers(p, d, scale, shift, inverse, needed)
    if inverse:
        _check_variation(d[inliers])
    if not scale > 0.0:
        raise FitRefused(NON_POSITIVE_SCALE, f"The best fit has scale {scale:.4g} <= 0: the "
                         "reference gets farther where the network sees nearer. Check that the "
                         "reference belongs to this camera and its extrinsic or registration.")
    d_in = d[inliers]
    with np.errstate(divide="ignore"):
        fitted = 1.0 / (scale * p[inliers] + shift) if inverse else scale * p[inliers]
    residual = _median(np.abs(fitted - d_in) / d_in)
    if not residual <= max_residual:
        raise FitRefused(RESIDUAL_TOO_LARGE, f"The reference and the network disagree: the "
                         f"median relative depth error at the {count} inliers is "
                         f"{residual:.1%}, more than the allowed {max_residual:.1%}.")
    return ScaleFit(scale=float(scale), shift=float(shift), inverse=inverse, inliers=count,
                    residual=residual)


def _median(values: np.ndarray) -> float:
    """Return the upper median: a partial sort, three times faster than np.median's average."""
    middle = values.size // 2
    return float(np.partition(values, middle)[middle])


def _inliers(p: np.ndarray, d: np.ndarray, scale: float, shift: float, inverse: bool,
             needed: int) -> tuple[np.ndarray, int]:
    """Return the samples within the adaptive threshold of this fit, and how many they are."""
    if inverse:
        error = _inverse_error(p, d, scale, shift)
    else:
        error = np.abs(scale * p / d - 1.0)
    threshold = max(_MIN_THRESHOLD, _INLIER_SIGMAS * _MAD_TO_SIGMA * _median(error))
    inliers = error < threshold
    count = int(np.count_nonzero(inliers))
    if count < needed:
        raise FitRefused(TOO_FEW_POINTS, f"Only {count} of {p.size} reference samples agree "
                         f"with the best fit (within {threshold:.1%} relative depth error); "
                         f"at least {needed} are needed.")
    return inliers, count


def _inverse_error(p: np.ndarray, d: np.ndarray, scale: float, shift: float) -> np.ndarray:
    """Return |d * (scale * p + shift) - 1|, the relative error of the fitted inverse depth."""
    error = p * scale
    error += shift
    error *= d
    error -= 1.0
    return np.abs(error, out=error)


def _affine_ransac(p: np.ndarray, d: np.ndarray) -> tuple[float, float]:
    """Return the pair hypothesis (scale, shift) with the least median error on a subset."""
    n = p.size
    i, j = (_PAIRS * n).astype(np.intp)
    q_i, q_j = 1.0 / d[i], 1.0 / d[j]
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = (q_i - q_j) / (p[i] - p[j])
        shift = q_i - scale * p[i]
    good = np.isfinite(scale) & np.isfinite(shift)
    if not good.any():
        raise FitRefused(DEGENERATE, f"All {n} reference samples have the same prediction "
                         f"({p[0]:.6g}); a scale and a shift cannot be fitted to one value.")
    if n > _SCORED:
        pick = (np.arange(_SCORED) * n) // _SCORED
        p, d = p[pick], d[pick]
    scale, shift = scale[good], shift[good]
    # d * (s p + t) - 1 for every hypothesis (row) and sample (column). Plain ufuncs, not a
    # matrix product: BLAS would start threads that compete with the network's.
    error = scale[:, np.newaxis] * p
    error += shift[:, np.newaxis]
    error *= d
    error -= 1.0
    np.abs(error, out=error)
    middle = p.size // 2
    best = int(np.argmin(np.partition(error, middle, axis=1)[:, middle]))
    return float(scale[best]), float(shift[best])


def _least_squares(p: np.ndarray, d: np.ndarray, inverse: bool) -> tuple[float, float]:
    """Return the (scale, shift) minimising the squared relative error over these samples."""
    if not inverse:
        ratio = p / d
        return float(ratio.sum() / np.dot(ratio, ratio)), 0.0
    # Rows [d p, d] times [s, t] should be 1; the 2x2 normal equations, solved directly.
    a = d * p
    saa, sab, sbb = float(np.dot(a, a)), float(np.dot(a, d)), float(np.dot(d, d))
    sa, sb = float(a.sum()), float(d.sum())
    det = saa * sbb - sab * sab
    if not det > 1e-12 * saa * sbb:
        raise FitRefused(DEGENERATE, f"The {p.size} inlier reference samples all have the "
                         "same prediction; a scale and a shift cannot be fitted to one value.")
    return (sa * sbb - sb * sab) / det, (saa * sb - sab * sa) / det


def _check_variation(d: np.ndarray) -> None:
    """Refuse an affine fit whose inliers' inverse depths vary too little to fix a shift."""
    q = 1.0 / d
    mean = q.sum() / q.size
    q -= mean
    variation = math.sqrt(np.dot(q, q) / q.size) / mean
    if not variation >= _MIN_INVERSE_VARIATION:
        raise FitRefused(DEGENERATE, f"The {d.size} inlier reference depths vary by only "
                         f"{variation:.1%} in inverse depth (standard deviation over mean), "
                         f"less than the {_MIN_INVERSE_VARIATION:.0%} needed to fit both scale "
                         "and shift, as when all of them lie on a wall facing the camera. Let "
                         "the reference see several distances (e.g. the floor), or use a "
                         "metric model, which needs a scale only.")


class AlignmentFilter:
    """Smooth fits made on normalised predictions over time; restart on a change of view.

    ``scale`` and ``shift`` move towards each new fit by ``1 - exp(-dt / time_constant_s)``,
    dt from the stamps, so the smoothing does not depend on the frame rate and a long gap
    forgets the old fit by itself. The filter restarts at the new fit when there is no stamp,
    when the stamp does not increase (a looped bag, a restarted driver), when
    ``time_constant_s`` is 0, and when the depths the filtered fit and the new fit give at
    the frame's reference points (``probe``, normalised predictions there) differ by more
    than ``change_ratio`` (median relative difference): normalised fits change with the view
    (see ``normalization``), and blending two views' fits would be wrong for both.
    ``last_change`` holds that median for tuning (NaN when it was not measured).
    """

    def __init__(self, time_constant_s: float, change_ratio: float) -> None:
        if not (math.isfinite(time_constant_s) and time_constant_s >= 0.0):
            raise ValueError(f"time_constant_s must be finite and >= 0, got {time_constant_s}")
        if not (math.isfinite(change_ratio) and change_ratio > 0.0):
            raise ValueError(f"change_ratio must be finite and > 0, got {change_ratio}")
        self.time_constant_s = float(time_constant_s)
        self.change_ratio = float(change_ratio)
        self.last_change = math.nan
        self._fit: Optional[ScaleFit] = None
        self._stamp: Optional[float] = None

    def reset(self) -> None:
        """Forget the filtered fit, so the next update returns its own fit."""
        self._fit = None
        self._stamp = None
        self.last_change = math.nan

    def update(self, fit: ScaleFit, stamp_s: Optional[float], probe: np.ndarray) -> ScaleFit:
        """Return the filtered fit after this frame's ``fit``, with its inliers and residual."""
        previous, self._stamp = self._stamp, stamp_s
        state = self._fit
        self.last_change = math.nan
        if (state is None or state.inverse != fit.inverse or self.time_constant_s == 0.0
                or stamp_s is None or previous is None or not stamp_s > previous):
            self._fit = fit
            return fit
        self.last_change = _median_change(state, fit, probe)
        if not self.last_change <= self.change_ratio:
            self._fit = fit
            return fit
        weight = -math.expm1(-(stamp_s - previous) / self.time_constant_s)
        self._fit = ScaleFit(scale=state.scale + weight * (fit.scale - state.scale),
                             shift=state.shift + weight * (fit.shift - state.shift),
                             inverse=fit.inverse, inliers=fit.inliers, residual=fit.residual)
        return self._fit


def _median_change(old: ScaleFit, new: ScaleFit, probe: np.ndarray) -> float:
    """Return the median of |old depth - new depth| / new depth at the probe; inf if none.

    At most _SCORED evenly chosen probe values are used: the median of that many already
    tells a change of view (tens of percent) from the filter's own lag (a few percent).
    """
    if probe.size > _SCORED:
        probe = probe[(np.arange(_SCORED) * probe.size) // _SCORED]
    new_depth = new.depth(probe)
    change = np.abs(old.depth(probe) - new_depth) / new_depth
    change = change[np.isfinite(change)]
    return _median(change) if change.size else math.inf


class ScaleAligner:
    """Align one camera's predictions to its reference, frame after frame.

    Per frame: normalise the prediction, sample it at the reference pixels, fit, filter,
    and express the result on raw predictions (``current``). A refused frame raises
    FitRefused and leaves ``current`` at the last good fit. The settings are read-only;
    build a new aligner when they change (the filter's state belongs to them).
    """

    def __init__(self, inverse: bool, min_points: int, max_residual: float,
                 time_constant_s: float, change_ratio: float) -> None:
        if int(min_points) != min_points or min_points < (2 if inverse else 1):
            raise ValueError(f"min_points must be an integer >= {2 if inverse else 1}, got "
                             f"{min_points}")
        if not (math.isfinite(max_residual) and max_residual > 0.0):
            raise ValueError(f"max_residual must be finite and > 0, got {max_residual}")
        self._inverse = bool(inverse)
        self._min_points = int(min_points)
        self._max_residual = float(max_residual)
        self._filter = AlignmentFilter(time_constant_s, change_ratio)
        self.current: Optional[ScaleFit] = None

    @property
    def inverse(self) -> bool:
        """Return True for relative (affine inverse depth) models, False for metric ones."""
        return self._inverse

    @property
    def min_points(self) -> int:
        """Return the fewest samples a fit must agree with."""
        return self._min_points

    @property
    def max_residual(self) -> float:
        """Return the largest median relative depth error a fit may have at its inliers."""
        return self._max_residual

    @property
    def time_constant_s(self) -> float:
        """Return the temporal filter's time constant in seconds (0: no smoothing)."""
        return self._filter.time_constant_s

    @property
    def change_ratio(self) -> float:
        """Return the median relative depth change that restarts the filter."""
        return self._filter.change_ratio

    def update(self, prediction: np.ndarray, samples: ReferenceSamples,
               stamp_s: Optional[float]) -> ScaleFit:
        """Return the filtered fit, in raw units, after this frame's (H, W) ``prediction``.

        ``samples`` must index pixels of ``prediction``; ``stamp_s`` is the frame's time
        in seconds, or None to restart the filter.
        """
        norm = normalization(prediction, self._inverse)
        probe = prediction[samples.rows, samples.cols].astype(np.float64)
        probe -= norm.centre
        probe /= norm.spread
        depth = samples.depth
        finite = np.isfinite(probe)
        if not finite.all():
            probe, depth = probe[finite], depth[finite]
        fitted = fit(probe, depth, self._inverse, self._min_points, self._max_residual)
        self.current = self._filter.update(fitted, stamp_s, probe).in_raw_units(norm)
        return self.current
