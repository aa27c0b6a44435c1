"""The global self-attention matrices of a transformer graph: Softmax nodes over all of an image's tokens."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .errors import MethodError
from .layers import Layer, attention_pairs
from .layout import TokenLayout

if TYPE_CHECKING:  # onnx takes 0.6 s to import; listing methods must not pay it
    import onnx


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


def residual_stream(table: list[Layer], proto: onnx.ModelProto, model_name: str = "MODEL") -> list[str]:
    """The token tensor leaving each block: the input of the next block's first LayerNorm, and after the last block
    the last token Add (the residual sum the head reads)."""
    pairs = attention_pairs(table)
    producers = {out: node for node in proto.graph.node for out in node.output}
    entering = [producers[block.name].input[0] if block.name in producers else "" for block, _ in pairs]
    last_attention = max((k for k, layer in enumerate(table) if layer.name == pairs[-1][1].name), default=-1) \
        if pairs else -1
    adds = [layer.name for layer in table[last_attention + 1 :] if layer.op_type == "Add" and layer.tokens]
    if not pairs or not adds or not all(entering):
        raise MethodError(f"{model_name} has no residual stream of transformer blocks to read (a LayerNorm and a "
                          "Softmax attention per block, token Adds after the last): a ViT-like model is needed")
    return [*entering[1:], adds[-1]]
