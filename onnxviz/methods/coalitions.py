"""What the coalition methods share (LIME, KernelSHAP, Shapley value sampling, feature ablation, Sobol): the image
cut into groups (segments), the model scored on copies where a coalition of groups keeps the image and the rest
shows the baseline, and the weighted linear regressions LIME and KernelSHAP fit. onnxruntime only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..baselines import NAMED, check_baseline, make_baseline
from ..io import read_image
from ..options import option
from ..segments import GRANULARITY, check_granularity, group_labels

BLOCK = 64  # perturbed copies materialized at once, at most (fewer with a smaller --batch-size)


@dataclass(frozen=True)
class CoalitionOptions:
    """The options every coalition method takes."""

    granularity: str = option("superpixel:50", GRANULARITY.replace("pixel (every input value), ", ""))
    baselines: float | str | np.ndarray | None = option(
        0.0, "what an absent group shows: a value in the model's input space, mean, blur, segments (each segment's "
             "mean colour), an image path, an array")
    blur_sigma: float = option(10.0, "Gaussian sigma in pixels for baselines=blur")

    def __post_init__(self):
        check_granularity(self.granularity, pixel=False)
        check_baseline(self.baselines, (*NAMED, "segments"))


def segments(ctx, x: np.ndarray, opts: CoalitionOptions, baselines: float | str | np.ndarray | None = None
             ) -> tuple[list[np.ndarray], np.ndarray]:
    """Per sample its group labels (shaped like the sample), and the baseline batch (`baselines` overrides the
    option's, for presets)."""
    labels = [group_labels(sample, opts.granularity, ctx.layout, read_image) for sample in x]
    spec = opts.baselines if baselines is None else baselines
    spec = 0.0 if spec is None else spec
    if isinstance(spec, str) and spec == "segments":
        channel_axis = ctx.layout.channel_axis - 1
        return labels, np.stack([segment_means(s, lab, channel_axis) for s, lab in zip(x, labels, strict=True)])
    return labels, make_baseline(spec, x, ctx.layout, ctx.sample_rng, opts.blur_sigma, ctx.image)


def segment_means(sample: np.ndarray, labels: np.ndarray, channel_axis: int) -> np.ndarray:
    """Each value replaced by its segment's mean in its channel (the lime package's hide_color=None)."""
    groups = int(labels.max()) + 1
    key = (np.indices(sample.shape, sparse=True)[channel_axis] * groups + labels).ravel()
    size = sample.shape[channel_axis] * groups
    means = np.bincount(key, sample.ravel().astype(np.float64), size) / np.maximum(np.bincount(key, None, size), 1)
    return means[key].reshape(sample.shape).astype(sample.dtype)


def scores(ctx, i: int, x: np.ndarray, fill: np.ndarray, labels: np.ndarray, coalitions: np.ndarray,
           on_chunk=None) -> np.ndarray:
    """The target's score of sample i under each coalition (rows of 0/1 over the groups), in blocks."""
    out = np.empty(len(coalitions), np.float64)
    size = max(1, min(BLOCK, ctx.batch_size))  # memory follows --batch-size
    view = ctx.for_samples([i] * min(size, len(coalitions)))
    for start in range(0, len(coalitions), size):
        block = coalitions[start : start + size]
        keep = np.take(block.astype(bool), labels, axis=1)  # (B, *sample shape), C-ordered as onnxruntime takes it
        batch = np.where(keep, x[i], fill[i].astype(x.dtype))
        scorer = view if len(block) == size else ctx.for_samples([i] * len(block))
        out[start : start + len(block)] = scorer.score(batch, on_chunk=on_chunk)
    return out


def spread(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each group's value at every input value of the group (as Captum returns feature-mask attributions)."""
    return np.asarray(values, np.float64)[labels].astype(np.float32)


def weighted_linear(z: np.ndarray, y: np.ndarray, weights: np.ndarray, alpha: float = 0.0) -> np.ndarray:
    """Coefficients of y ~ b + z @ c minimizing sum_s w_s (y_s - b - z_s c)^2 + alpha |c|^2 (the intercept not
    penalized): weighted means removed, then a least-squares solve (alpha 0) or the ridge's normal equations, as
    scikit-learn's LinearRegression and Ridge fit with sample weights."""
    w = np.asarray(weights, np.float64)
    z, y = z.astype(np.float64), np.asarray(y, np.float64)
    zc, yc = z - (w @ z) / w.sum(), y - (w @ y) / w.sum()
    if alpha == 0:
        root = np.sqrt(w)
        coef, *_ = np.linalg.lstsq(zc * root[:, None], yc * root, rcond=None)
        return coef
    weighted = zc * w[:, None]
    return np.linalg.solve(weighted.T @ zc + alpha * np.eye(z.shape[1]), weighted.T @ yc)


def lasso(z: np.ndarray, y: np.ndarray, weights: np.ndarray, alpha: float, tolerance: float = 1e-10,
          max_sweeps: int = 10_000) -> np.ndarray:
    """Coefficients minimizing 1/(2n) sum_s v_s (y_s - b - z_s c)^2 + alpha |c|_1, the weights rescaled to sum to n
    (scikit-learn's Lasso with sample weights, which Captum's LIME fits by default), by cyclic coordinate descent."""
    w = np.asarray(weights, np.float64)
    w = w * (len(w) / w.sum())
    z, y = z.astype(np.float64), np.asarray(y, np.float64)
    zc, yc = z - (w @ z) / w.sum(), y - (w @ y) / w.sum()
    n = len(y)
    norms = (w[:, None] * zc * zc).sum(axis=0) / n
    coef = np.zeros(z.shape[1])
    residual = yc.copy()
    for _ in range(max_sweeps):
        largest = 0.0
        for j in np.flatnonzero(norms > 0):
            rho = (w * zc[:, j]) @ residual / n + norms[j] * coef[j]
            new = np.sign(rho) * max(abs(rho) - alpha, 0.0) / norms[j]
            if new != coef[j]:
                residual -= zc[:, j] * (new - coef[j])
                largest = max(largest, abs(new - coef[j]))
                coef[j] = new
        if largest < tolerance:
            break
    return coef
