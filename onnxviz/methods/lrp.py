"""Layer-wise relevance propagation with Zennit's composites: the target's score is redistributed layer by layer
back to the pixels, each layer kind by its rule, so the relevance sums to the score (up to what biases and the
stabilizers absorb).

Bach et al. 2015, https://doi.org/10.1371/journal.pone.0130140; composites as Zennit (Anders et al. 2021),
https://arxiv.org/abs/2106.13200
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..backward import Lrp as LrpRules
from ..method import Method, MethodOutput
from ..options import option

Composite = Literal["epsilon_plus_flat", "epsilon_gamma_box", "epsilon_alpha2_beta1"]
Rule = Literal["epsilon", "gamma", "alpha2_beta1", "zplus", "flat", "zbox"]


@dataclass(frozen=True)
class LrpOptions:
    composite: Composite = option("epsilon_plus_flat", "the rule per layer kind, as Zennit's composite of that name")
    rule: Rule | None = option(None, "one rule for every convolution and dense layer instead of a composite")
    first_rule: Rule | None = option(None, "the first such layer's rule instead (zbox: for inputs in a known box)")
    epsilon: float = option(1e-6, "stabilizer of the epsilon rule (larger: less noise, less conservation)")
    gamma: float = option(0.25, "how much the gamma rule favours positive contributions")
    stabilizer: float = option(1e-6, "stabilizer of the other rules")
    low: tuple[float, ...] | None = option(None, "z-box lower bound per channel of the first layer's input "
                                                  "(default: black through the model's preprocessing)")
    high: tuple[float, ...] | None = option(None, "z-box upper bound per channel (default: white)")

    def __post_init__(self):
        for name in ("epsilon", "gamma", "stabilizer"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, not {getattr(self, name)}")
        if (self.low is None) != (self.high is None):
            raise ValueError("give low and high together (the z-box rule's bounds), or neither")
        if self.low is not None and self.high is not None:
            if len(self.low) != len(self.high) or any(a > b for a, b in zip(self.low, self.high, strict=True)):
                raise ValueError(f"low {self.low} and high {self.high} must have one value per channel each, low <= "
                                 "high")


def box_bounds(ctx) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Black and white pixels through the model's preprocessing, per channel (the z-box rule's default box)."""
    prep = ctx.model.preprocessing
    channels = ctx.model.input.channels or 3
    black, white = (prep.apply(np.full((1, 1, 3), v, np.float32)).reshape(-1)[:channels] for v in (0.0, 1.0))
    low, high = np.minimum(black, white), np.maximum(black, white)
    return tuple(float(v) for v in low), tuple(float(v) for v in high)


class Lrp(Method):
    """Relevance redistributed from the score to the pixels, layer by layer, by Zennit-style rules."""

    name = "lrp"
    family = "attribution"
    requires = "gradients"
    display = "absolute"
    paper = "https://doi.org/10.1371/journal.pone.0130140"
    Options = LrpOptions

    def explain(self, ctx, x: np.ndarray, opts: LrpOptions) -> MethodOutput:
        low, high = (opts.low, opts.high) if opts.low is not None and opts.high is not None else box_bounds(ctx)
        rules = LrpRules(composite=opts.composite, rule=opts.rule, first_rule=opts.first_rule, epsilon=opts.epsilon,
                         gamma=opts.gamma, stabilizer=opts.stabilizer, low=low, high=high)
        scores = ctx.explained_scores(x)
        # every rule is linear in the relevance it receives: seeding 1 and scaling by the score seeds the score
        per_unit = ctx.grad(x, rules=rules)
        relevance = (per_unit * scores.reshape(-1, *[1] * (x.ndim - 1))).astype(np.float32)
        total = relevance.reshape(len(x), -1).sum(axis=1)
        return MethodOutput(relevance, extras={
            "relevance_sum": total.tolist(),
            "conservation": (total / np.where(scores == 0, 1.0, scores)).tolist(),
        })
