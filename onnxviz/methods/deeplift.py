"""DeepLIFT (rescale rule) and DeepLIFT-SHAP: (x - reference) times multipliers that the rescale rule propagates in
place of gradients; DeepLIFT-SHAP averages them over a set of references.

Shrikumar, Greenside & Kundaje 2017, https://arxiv.org/abs/1704.02685; Lundberg & Lee 2017 (DeepSHAP),
https://arxiv.org/abs/1705.07874
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backward import DeepLift as DeepLiftRules
from ..baselines import baseline_set, check_baseline, check_baseline_set, make_baseline
from ..method import Method, MethodOutput
from ..options import option


def _check_eps(eps: float) -> None:
    if not 0 <= eps < 1:
        raise ValueError(f"eps must be in [0, 1), not {eps}: below it an input counts as unchanged and keeps its "
                         "gradient (Captum: 1e-10)")


@dataclass(frozen=True)
class DeepLiftOptions:
    baselines: float | str | np.ndarray = option(0.0, "the reference: a value, mean, blur, uniform, or an array")
    eps: float = option(1e-10, "an input that moves less than this keeps its gradient")
    blur_sigma: float = option(10.0, "Gaussian sigma in pixels for baselines=blur")

    def __post_init__(self):
        check_baseline(self.baselines, files=False)
        _check_eps(self.eps)


def summation_gap(ctx, scores: np.ndarray, references: np.ndarray, attributions: np.ndarray) -> np.ndarray:
    """sum(attributions) - (f(x) - f(reference)) per row, from the inputs' `scores`: 0 where every nonlinearity was
    rescaled (DeepLIFT's summation-to-delta)."""
    gap = scores - ctx.score(references)
    return attributions.reshape(len(scores), -1).sum(axis=1) - gap


class DeepLift(Method):
    """Attributions that sum to f(x) - f(reference), from one pass pair (input and reference) per image."""

    name = "deeplift"
    family = "attribution"
    requires = "gradients"
    display = "absolute"
    paper = "https://arxiv.org/abs/1704.02685"
    Options = DeepLiftOptions

    def explain(self, ctx, x: np.ndarray, opts: DeepLiftOptions) -> MethodOutput:
        reference = make_baseline(opts.baselines, x, ctx.layout, ctx.sample_rng, opts.blur_sigma)
        multipliers = ctx.grad(x, rules=DeepLiftRules(eps=opts.eps), reference=reference)
        attributions = ((x - reference) * multipliers).astype(np.float32)
        error = summation_gap(ctx, ctx.explained_scores(x), reference, attributions)
        return MethodOutput(attributions, extras={"summation_to_delta_error": error.tolist()})


@dataclass(frozen=True)
class DeepLiftShapOptions:
    baselines: float | str | np.ndarray = option(
        "uniform", "the references: uniform (n_baselines noise images), a (K, ...) array or .npy file, or one "
        "value, mean, blur")
    n_baselines: int = option(8, "how many uniform-noise references per image")
    eps: float = option(1e-10, "an input that moves less than this keeps its gradient")
    blur_sigma: float = option(10.0, "Gaussian sigma in pixels for baselines=blur")

    def __post_init__(self):
        check_baseline_set(self.baselines)
        _check_eps(self.eps)
        if not 1 <= self.n_baselines <= 10_000:
            raise ValueError(f"n_baselines must be 1..10000, not {self.n_baselines}")


class DeepLiftShap(Method):
    """DeepLIFT averaged over a distribution of references (approximate SHAP values)."""

    name = "deeplift_shap"
    family = "attribution"
    requires = "gradients"
    display = "absolute"
    paper = "https://arxiv.org/abs/1705.07874"
    Options = DeepLiftShapOptions

    def explain(self, ctx, x: np.ndarray, opts: DeepLiftShapOptions) -> MethodOutput:
        rules = DeepLiftRules(eps=opts.eps)
        attributions = np.zeros(x.shape, np.float64)
        errors = []
        scores = ctx.explained_scores(x)
        with ctx.progress(len(x), "deeplift_shap") as bar:
            for i, sample in enumerate(x):
                refs = baseline_set(opts.baselines, sample, ctx.layout, ctx.sample_rng(sample), opts.n_baselines,
                                    opts.blur_sigma)
                rows = ctx.for_samples([i] * len(refs))
                copies = np.repeat(sample[None], len(refs), axis=0)
                each = (copies - refs) * rows.grad(copies, rules=rules, reference=refs)
                attributions[i] = each.mean(axis=0)
                errors.append(float(np.mean(summation_gap(rows, np.repeat(scores[i], len(refs)), refs, each))))
                bar.update(1)
        return MethodOutput(attributions.astype(np.float32), extras={"summation_to_delta_error": errors})
