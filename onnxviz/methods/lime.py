"""LIME: a weighted linear surrogate of the model on random coalitions of image segments; its coefficients are the
segments' attributions.

Ribeiro, Singh & Guestrin 2016, https://arxiv.org/abs/1602.04938
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..method import Method
from ..options import option
from .coalitions import CoalitionOptions, lasso, scores, segments, spread, weighted_linear

PRESETS = {"captum": {"surrogate": "lasso", "alpha": 0.01, "kernel_width": 1.0, "distance": "input", "baselines": 0.0},
           "lime": {"surrogate": "ridge", "alpha": 1.0, "kernel_width": 0.25, "distance": "coalition",
                    "baselines": "segments"}}


@dataclass(frozen=True)
class LimeOptions(CoalitionOptions):
    n_samples: int = option(200, "random coalitions (each segment kept with probability 1/2)")
    preset: Literal["captum", "lime"] = option(
        "captum", "captum: Lasso (alpha 0.01), exp(-d^2 / 2w^2) of the perturbed input's cosine distance, w 1, "
                  "baseline 0; lime: the lime package's LimeImageExplainer, Ridge (alpha 1), sqrt(exp(-d^2 / w^2)) "
                  "of the coalition's cosine distance, w 0.25, absent segments their mean colour")
    surrogate: Literal["lasso", "ridge", "linear"] | None = option(None, "the surrogate model (default: the preset's)")
    alpha: float | None = option(None, "its penalty (default: the preset's)")
    kernel_width: float | None = option(None, "the similarity kernel's width (default: the preset's)")
    baselines: float | str | np.ndarray | None = option(
        None, "what an absent segment shows: a value, mean, blur, segments (its mean colour), an image path, an "
              "array (default: the preset's)")

    def __post_init__(self):
        super().__post_init__()
        if self.n_samples < 2:
            raise ValueError("n_samples must be at least 2")
        for name in ("alpha", "kernel_width"):
            value = getattr(self, name)
            if value is not None and (value < 0 or (name == "kernel_width" and value == 0)):
                raise ValueError(f"{name} must be positive")

    def setting(self, key: str):
        given = getattr(self, key, None)  # distance follows the preset alone
        return PRESETS[self.preset][key] if given is None else given


def coalitions(rng: np.random.Generator, n: int, groups: int, first_all: bool) -> np.ndarray:
    """(n, groups) 0/1 rows, each segment kept with probability 1/2 (the lime package starts with the image)."""
    rows = (rng.random((n, groups)) < 0.5).astype(np.int8)
    if first_all:
        rows[0] = 1
    return rows


def input_cosines(z: np.ndarray, x: np.ndarray, fill: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """cos(x, p_s) for the perturbed inputs p_s = fill + z_s[labels] (x - fill), without building them: per group
    sums of (x - f) x and x^2 - f^2 (z is 0 or 1)."""
    x, fill, flat = x.ravel().astype(np.float64), fill.ravel().astype(np.float64), labels.ravel()
    groups = z.shape[1]
    dot = fill @ x + z @ np.bincount(flat, (x - fill) * x, groups)
    norm = np.sqrt(np.maximum(fill @ fill + z @ np.bincount(flat, x * x - fill * fill, groups), 0))
    return dot / np.maximum(norm * np.linalg.norm(x), 1e-8)


def similarities(opts: LimeOptions, z: np.ndarray, x: np.ndarray, fill: np.ndarray, labels: np.ndarray
                 ) -> np.ndarray:
    width = float(opts.setting("kernel_width"))
    if opts.setting("distance") == "input":  # Captum: cosine distance between the flattened inputs
        return np.exp(-((1 - input_cosines(z, x, fill, labels)) ** 2) / (2 * width**2))
    cosine = z.sum(axis=1) / np.maximum(np.sqrt(z.sum(axis=1) * z.shape[1]), 1e-12)  # lime: to the all-ones row
    return np.sqrt(np.exp(-((1 - cosine) ** 2) / width**2))


class Lime(Method):
    """Coefficients of a weighted linear surrogate fitted on random coalitions of segments (onnxruntime only)."""

    name = "lime"
    family = "perturbation"
    needs_image = True
    requires = "forward"
    paper = "https://arxiv.org/abs/1602.04938"
    Options = LimeOptions

    def explain(self, ctx, x: np.ndarray, opts: LimeOptions) -> np.ndarray:
        labels, fill = segments(ctx, x, opts, opts.setting("baselines"))
        out = np.zeros(x.shape, np.float32)
        with ctx.progress(len(x) * opts.n_samples, self.name) as bar:
            for i in range(len(x)):
                groups = int(labels[i].max()) + 1
                z = coalitions(ctx.sample_rng(x[i]), opts.n_samples, groups, opts.preset == "lime")
                y = scores(ctx, i, x, fill, labels[i], z, bar.update)
                weights = similarities(opts, z, x[i], fill[i], labels[i])
                out[i] = spread(fit(opts, z, y, weights), labels[i])
        return out


def fit(opts: LimeOptions, z: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    kind, alpha = opts.setting("surrogate"), float(opts.setting("alpha"))
    if kind == "lasso":
        return lasso(z, y, weights, alpha)
    return weighted_linear(z, y, weights, alpha if kind == "ridge" else 0.0)
