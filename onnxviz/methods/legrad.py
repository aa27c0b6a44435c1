"""LeGrad: how sensitive each block's own readout is to its attention weights. The token tensor after block l goes
through the network's head (final norm, pooling, classifier) as if it were the last; the gradient of that score with
respect to block l's attention, kept where positive and averaged over heads and query tokens, says how much each
patch token shaped the prediction at that depth. The maps of the chosen blocks are summed.

Bousselham et al. 2024, https://arxiv.org/abs/2404.03214
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import MethodError
from ..method import Method, MethodOutput
from ..options import option
from .rollout import per_head


@dataclass(frozen=True)
class LeGradOptions:
    from_block: int = option(-2, "first block read (Python index: -2 = the last two blocks, LeGrad's default, or all "
                                 "when there are fewer; 0 = all)")


class LeGrad(Method):
    """Positive gradients of each block's head readout with respect to its attention, summed over blocks."""

    name = "legrad"
    family = "attention"
    output = "map"
    paper = "https://arxiv.org/abs/2404.03214"
    Options = LeGradOptions

    def explain(self, ctx, x: np.ndarray, opts: LeGradOptions) -> MethodOutput:
        attention, axes = ctx.attention()
        stream = ctx.residual_stream()
        if len(stream) != len(attention):
            raise MethodError(f"legrad pairs each block's attention with its output: {len(attention)} attention "
                              f"matrices but {len(stream)} block outputs in this graph")
        if opts.from_block >= len(attention):
            raise MethodError(f"from_block {opts.from_block} is out of range: the graph has {len(attention)} blocks")
        first = max(opts.from_block, -len(attention))  # the last k blocks, or all of them when there are fewer
        chosen = list(zip(attention, stream, strict=True))[first:]
        grads = ctx.readout_grads(x, chosen, head=stream[-1])
        total = np.zeros((len(x), *axes.grid), np.float64)
        for g in grads:
            relevance = np.maximum(per_head(g, len(x)), 0).mean(axis=(1, 2))  # heads, then query tokens
            total += relevance[:, axes.prefix :].reshape(len(x), *axes.grid)
        maps = total.astype(np.float32)
        return MethodOutput(maps, raw=maps)
