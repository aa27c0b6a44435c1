"""Attention rollout: how much each patch token flows into the class token through every block's attention and
its residual connection; `-o variant gradient` weights each block's attention by its gradient (relevancy).

Attention rollout: Abnar & Zuidema 2020, https://arxiv.org/abs/2005.00928
Gradient-weighted rollout: Chefer, Gur & Wolf 2021, https://arxiv.org/abs/2103.15679
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..layout import TokenLayout
from ..method import Method, MethodOutput
from ..options import option

FUSIONS: dict[str, Callable[..., np.ndarray]] = {"mean": np.mean, "max": np.max, "min": np.min}


@dataclass(frozen=True)
class RolloutOptions:
    variant: Literal["plain", "gradient"] = option(
        "plain", "plain: attention alone, the same for every class; gradient: each block's attention weighted by "
                 "its gradient, positive part, heads averaged (Chefer et al. 2021): a class-specific map")
    head_fusion: Literal["mean", "max", "min"] = option("mean", "how a block's heads are combined (plain rollout)")
    discard_ratio: float = option(0.0, "fraction of each block's weakest fused attention weights set to zero "
                                       "before rolling out (plain rollout; vit-explain uses 0.9)")

    def __post_init__(self):
        if not 0 <= self.discard_ratio < 1:
            raise ValueError(f"discard_ratio must be in [0, 1), not {self.discard_ratio}")
        if self.variant == "gradient" and (self.head_fusion != "mean" or self.discard_ratio):
            raise ValueError("head_fusion and discard_ratio apply to plain rollout; the gradient variant averages "
                             "the heads' positive gradient x attention")


def per_head(attention: np.ndarray, n: int) -> np.ndarray:
    """(N, heads, T, T) from the Softmax output, also when an export folds the heads into the batch."""
    return attention.reshape(n, -1, *attention.shape[-2:])


def discard(fused: np.ndarray, ratio: float) -> np.ndarray:
    """The weakest `ratio` of the (T, T) weights set to zero, except the class token's attention to itself."""
    flat = fused.reshape(-1).copy()
    weakest = np.argsort(flat, kind="stable")[: int(flat.size * ratio)]
    flat[weakest[weakest != 0]] = 0
    return flat.reshape(fused.shape)


def rollout(attentions: list[np.ndarray], fusion: str, ratio: float) -> np.ndarray:
    """R = A_L ... A_1 with A_l = rows-normalized (fused attention + I) / 2, for one image: (T, T)."""
    tokens = attentions[0].shape[-1]
    rolled = np.eye(tokens)
    for heads in attentions:
        fused = discard(FUSIONS[fusion](heads.astype(np.float64), axis=0), ratio)
        step = (fused + np.eye(tokens)) / 2
        rolled = step / step.sum(axis=1, keepdims=True) @ rolled
    return rolled


def relevance(attentions: list[np.ndarray], gradients: list[np.ndarray]) -> np.ndarray:
    """R = I; R += mean_heads((dS/dA * A)^+) @ R per block, for one image: (T, T)."""
    rolled = np.eye(attentions[0].shape[-1])
    for heads, grads in zip(attentions, gradients, strict=True):
        weighted = np.maximum(heads.astype(np.float64) * grads, 0).mean(axis=0)
        rolled = rolled + weighted @ rolled
    return rolled


def readout(rolled: np.ndarray, axes: TokenLayout) -> np.ndarray:
    """The patch grid's share of the token the head reads: the class token's row, or the mean row without one."""
    row = rolled[0] if axes.prefix else rolled.mean(axis=0)
    return row[axes.prefix :].reshape(axes.grid)


class Rollout(Method):
    """Attention rollout over the graph's Softmax attention nodes, as a map on the patch grid."""

    name = "rollout"
    family = "attention"
    requires = "forward"
    output = "map"
    target_dependent = False  # plain rollout reads attention only: the same for every class
    paper = "https://arxiv.org/abs/2005.00928"
    Options = RolloutOptions

    def explain(self, ctx, x: np.ndarray, opts: RolloutOptions) -> MethodOutput:
        names, axes = ctx.attention()
        n = len(x)
        if opts.variant == "gradient":
            pairs = ctx.layer_grads(x, names)
            acts = [per_head(a, n) for a, _ in pairs]
            grads = [per_head(g, n) for _, g in pairs]
            rolled = [relevance([a[i] for a in acts], [g[i] for g in grads]) for i in range(n)]
        else:
            acts = [per_head(a, n) for a in ctx.outputs(x, names)]
            rolled = [rollout([a[i] for a in acts], opts.head_fusion, opts.discard_ratio) for i in range(n)]
        maps = np.stack([readout(r, axes) for r in rolled]).astype(np.float32)
        return MethodOutput(maps, raw=maps)
