"""Finite-difference saliency: central differences of the target score, on onnxruntime only.

(f(x + h e_g) - f(x - h e_g)) / 2h for each group g of input values: single values (pixel granularity,
the gradient itself), K x K patches, or superpixels (the mean gradient over the group).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..layout import Layout
from ..layout import layout as layout_of
from ..method import Method
from ..options import option
from ..segments import superpixels

BLOCK = 64  # groups perturbed at once (2 x BLOCK inputs)


@dataclass(frozen=True)
class FiniteDifferenceOptions:
    granularity: str = option("pixel", "pixel (every input value), patch:K (K x K patches) or superpixel:N")
    h: float = option(1e-2, "step size in the model's input units")

    def __post_init__(self):
        kind, _, size = self.granularity.partition(":")
        if kind == "pixel" and not size:
            return
        if kind not in ("patch", "superpixel") or not size.isdigit() or int(size) < 1:
            raise ValueError(f"granularity must be pixel, patch:K or superpixel:N, not {self.granularity!r}")
        if self.h <= 0:
            raise ValueError("h must be positive")


def group_labels(sample: np.ndarray, granularity: str, layout: Layout | str) -> np.ndarray:
    """An int label per input value (same shape as one sample): which group it is perturbed with."""
    kind, _, size = granularity.partition(":")
    if kind == "pixel":
        return np.arange(sample.size).reshape(sample.shape)
    layout = layout_of(layout)
    hwc = layout.to_channels_last(sample[None])[0]
    height, width = hwc.shape[:2]
    if kind == "patch":
        k = int(size)
        rows, cols = np.arange(height) // k, np.arange(width) // k
        plane = rows[:, None] * (cols.max() + 1) + cols[None, :]
    else:
        plane = superpixels(hwc, int(size))
    labels = np.broadcast_to(plane[..., None], hwc.shape)
    return layout.from_channels_last(labels[None])[0]


class FiniteDifference(Method):
    """Central differences of the score per input value, patch or superpixel (no gradients needed)."""

    name = "finite_difference"
    family = "perturbation"
    requires = "forward"
    paper = "https://en.wikipedia.org/wiki/Finite_difference#Basic_types"
    Options = FiniteDifferenceOptions

    def explain(self, ctx, x: np.ndarray, opts: FiniteDifferenceOptions) -> np.ndarray:
        out = np.zeros(x.shape, np.float32)
        labels = [group_labels(sample, opts.granularity, ctx.layout) for sample in x]
        with ctx.progress(2 * sum(int(lab.max()) + 1 for lab in labels), "finite differences") as bar:
            for i, lab in enumerate(labels):
                flat = lab.ravel()
                groups = int(flat.max()) + 1
                sizes = np.bincount(flat, minlength=groups)
                slopes = np.empty(groups, np.float64)
                for start in range(0, groups, BLOCK):
                    ids = np.arange(start, min(start + BLOCK, groups))
                    step = (flat[None, :] == ids[:, None]).astype(x.dtype) * x.dtype.type(opts.h)  # (B, numel)
                    base = x[i].reshape(1, -1)
                    batch = np.concatenate([base + step, base - step]).reshape(-1, *x.shape[1:])
                    scores = ctx.for_samples([i] * len(batch)).score(batch, on_chunk=bar.update)
                    slopes[ids] = (scores[: len(ids)].astype(np.float64) - scores[len(ids) :]) / (2 * opts.h)
                out[i] = (slopes / sizes)[lab]
        return out
