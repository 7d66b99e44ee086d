"""Saliency metrics as the DHF1K benchmark (and the MIT saliency benchmark code it uses) defines them:
NSS, CC, SIM, KL, AUC-Judd and shuffled AUC. `saliency` is a predicted map, `density` the ground-truth
fixation density map, `fixations` the binary fixation map (both of the same shape as the prediction).

Differences from the MATLAB code: AUC-Judd adds no random jitter to break ties (ties follow the same
formula), and sAUC draws its non-fixation samples with a seeded generator."""

from __future__ import annotations

import numpy as np

# MATLAB's eps, which the benchmark's KL and normalisations use.
EPS = float(np.finfo(np.float64).eps)


def _as_map(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, np.float64)
    if values.ndim != 2:
        raise ValueError(f"saliency maps are 2-D, got shape {values.shape}")
    return values


def _fixation_mask(fixations: np.ndarray, like: np.ndarray) -> np.ndarray:
    mask = np.asarray(fixations) > 0
    if mask.shape != like.shape:
        raise ValueError(f"fixation map {mask.shape} and saliency map {like.shape} differ in shape")
    if not mask.any():
        raise ValueError("the fixation map has no fixation")
    return mask


def _standardise(values: np.ndarray) -> np.ndarray:
    std = values.std(ddof=1)  # MATLAB's std
    return (values - values.mean()) / std if std > 0 else values - values.mean()


def nss(saliency: np.ndarray, fixations: np.ndarray) -> float:
    """Normalised scanpath saliency: the standardised map's mean value at the fixated pixels."""
    s = _as_map(saliency)
    return float(_standardise(s)[_fixation_mask(fixations, s)].mean())


def cc(saliency: np.ndarray, density: np.ndarray) -> float:
    """Linear correlation coefficient (Pearson) of the two maps."""
    s, g = _standardise(_as_map(saliency)), _standardise(_as_map(density))
    return float((s * g).sum() / np.sqrt((s * s).sum() * (g * g).sum()))


def _distribution(values: np.ndarray) -> np.ndarray:
    total = values.sum()
    return values / total if total > 0 else values


def _unit_range(values: np.ndarray) -> np.ndarray:
    span = values.max() - values.min()
    return (values - values.min()) / span if span > 0 else np.zeros_like(values)


def sim(saliency: np.ndarray, density: np.ndarray) -> float:
    """Similarity (histogram intersection) of the two maps, each rescaled to [0, 1] then to sum 1."""
    s = _distribution(_unit_range(_as_map(saliency)))
    g = _distribution(_unit_range(_as_map(density)))
    return float(np.minimum(s, g).sum())


def kl(saliency: np.ndarray, density: np.ndarray) -> float:
    """KL divergence of the prediction from the ground truth, both as distributions (lower is better)."""
    s = _distribution(_as_map(saliency))
    g = _distribution(_as_map(density))
    return float((g * np.log(EPS + g / (s + EPS))).sum())


def auc_judd(saliency: np.ndarray, fixations: np.ndarray) -> float:
    """AUC-Judd: every fixated pixel's value is a threshold; TP rate over fixations, FP rate over the
    other pixels, trapezoidal area."""
    s = _unit_range(_as_map(saliency))
    mask = _fixation_mask(fixations, s)
    thresholds = np.sort(s[mask])[::-1]
    n_fix, n_pix = thresholds.size, s.size
    flat = np.sort(s.ravel())
    tp = np.concatenate([[0.0], np.arange(1, n_fix + 1) / n_fix, [1.0]])
    above = n_pix - np.searchsorted(flat, thresholds, side="left")  # pixels >= each threshold
    fp = np.concatenate([[0.0], (above - np.arange(1, n_fix + 1)) / (n_pix - n_fix), [1.0]])
    return float(np.trapezoid(tp, fp))


def auc_shuffled(
    saliency: np.ndarray,
    fixations: np.ndarray,
    other_fixations: np.ndarray,
    *,
    splits: int = 100,
    step: float = 0.1,
    seed: int = 0,
) -> float:
    """Shuffled AUC: negatives are the map's values where *other* images (frames) were fixated, which
    discounts the centre bias. Per split, as many negatives as fixations are drawn (all of them when there
    are fewer); thresholds run from the maximum down to 0 in `step`s; the split areas are averaged."""
    s = _unit_range(_as_map(saliency))
    mask = _fixation_mask(fixations, s)
    positives, candidates = s[mask], s[_fixation_mask(other_fixations, s)]
    rng = np.random.default_rng(seed)
    count = min(positives.size, candidates.size)
    areas = []
    for _ in range(splits):
        negatives = candidates if count == candidates.size else rng.choice(candidates, count, replace=False)
        top = max(positives.max(), negatives.max())
        thresholds = step * np.arange(int(np.floor(top / step + 1e-9)), -1, -1)  # MATLAB: fliplr(0:step:max)
        tp = np.concatenate([[0.0], [(positives >= t).mean() for t in thresholds], [1.0]])
        fp = np.concatenate([[0.0], [(negatives >= t).mean() for t in thresholds], [1.0]])
        areas.append(np.trapezoid(tp, fp))
        if count == candidates.size:
            break  # every split would draw the same negatives
    return float(np.mean(areas))
