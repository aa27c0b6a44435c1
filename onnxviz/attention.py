"""The global self-attention matrices of a transformer graph: Softmax nodes over all of an image's tokens."""

from __future__ import annotations

import math

from .errors import MethodError
from .layers import Layer, attention_pairs
from .layout import TokenLayout


def global_attention(table: list[Layer], model_name: str = "MODEL") -> tuple[list[Layer], TokenLayout]:
    """The attention matrices (N, heads, T, T) or (N * heads, T, T) whose T is the token count of the blocks' token
    grid (prefix + h * w), in block order, with that grid's layout. Windowed attention (Swin) has none."""
    pairs = attention_pairs(table)
    if not pairs:
        raise MethodError(f"{model_name} has no transformer attention (a Softmax over a T x T matrix after a token "
                          "tensor): attention methods need a ViT-like model; use gradcam or saliency instead")
    found = [(block.axes, softmax) for block, softmax in pairs
             if isinstance(block.axes, TokenLayout) and softmax.shape[-1] == _count(block.axes)]
    if not found:
        sizes = sorted({str(softmax.shape[-1]) for _, softmax in pairs})
        grids = sorted({block.layout for block, _ in pairs})
        raise MethodError(f"{model_name}'s attention is not over all of an image's tokens (Softmax over "
                          f"{', '.join(sizes)} tokens; block inputs {', '.join(grids)}): windowed or pooled attention "
                          "(Swin, LeViT) cannot be rolled out. Explain a token layer with gradcam instead")
    grids = sorted({str(axes) for axes, _ in found})
    if len(grids) > 1 or len(found) < len(pairs):
        raise MethodError(f"{model_name}'s attention runs over several token grids ({', '.join(grids)}; "
                          f"{len(found)} of {len(pairs)} blocks attend over all tokens): a pyramid such as LeViT's "
                          "cannot be rolled out over one grid. Explain a token layer with gradcam instead")
    return [softmax for _, softmax in found], found[-1][0]


def _count(axes: TokenLayout) -> int:
    return axes.prefix + math.prod(axes.grid)
