"""FullGrad: the input-gradient term |x * grad| plus, for every convolution with a bias (and every batch norm left
in the graph), |bias * grad| at its output; each channel min-max scaled and resized to the input, summed, scaled
again. pytorch-grad-cam's FullGrad (an exported Conv + BatchNorm pair folds into one Conv whose bias is the batch
norm's, at the same output: the same terms).

Srinivas & Fleuret 2019, https://arxiv.org/abs/1905.00780
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..backends.constants import constants
from ..errors import MethodError
from ..method import Method, MethodOutput

if TYPE_CHECKING:  # onnx takes 0.6 s to import; listing methods must not pay it
    import onnx


def bias_layers(graph: onnx.GraphProto) -> list[tuple[str, np.ndarray]]:
    """(output tensor, bias per channel) of every Conv with a constant bias and every BatchNormalization."""
    known = constants(graph)
    found = []
    for node in graph.node:
        if node.op_type == "Conv" and len(node.input) > 2 and node.input[2] in known:
            found.append((node.output[0], known[node.input[2]].astype(np.float64)))
        elif node.op_type == "BatchNormalization" and all(n in known for n in node.input[1:5]):
            scale, shift, mean, var = (known[n].astype(np.float64) for n in node.input[1:5])
            eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
            found.append((node.output[0], shift - mean * scale / np.sqrt(var + eps)))
    return found


def scaled_channels(maps: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, C, h, w) -> (N, height, width): each channel min-max scaled, resized (bilinear), summed over channels."""
    out = np.zeros((len(maps), height, width), np.float32)
    for i, image in enumerate(maps):
        for channel in image:
            scaled = (channel - channel.min()).astype(np.float32)
            scaled /= 1e-7 + scaled.max()
            out[i] += cv2.resize(scaled, (width, height))
    return out


class FullGrad(Method):
    """Input-gradient and bias-gradient terms of every layer, summed (a complete saliency decomposition)."""

    name = "fullgrad"
    family = "attribution"
    requires = "gradients"
    output = "map"
    paper = "https://arxiv.org/abs/1905.00780"

    def explain(self, ctx, x: np.ndarray, opts) -> MethodOutput:
        backend = ctx.model.gradient_backend()
        layers = [(name, bias) for name, bias in bias_layers(ctx.model.proto.graph) if backend.has_tensor(name)]
        if not layers:
            raise MethodError("fullgrad needs convolutions with a bias or batch norms; this graph has none")
        height, width = ctx.input_size(x)
        found = ctx.layer_grads(x, ["input", *(name for name, _ in layers)])
        acts, grads = found[0]
        total = scaled_channels(ctx.layout.to_channels_first(np.abs(acts * grads)), height, width)
        for (_, bias), (_, grads) in zip(layers, found[1:], strict=True):
            if grads.ndim == 4 and grads.shape[1] == len(bias):  # 2-D convolutions, as the reference
                total += scaled_channels(np.abs(bias[None, :, None, None] * grads), height, width)
        total -= total.min(axis=(1, 2), keepdims=True)
        total /= 1e-7 + total.max(axis=(1, 2), keepdims=True)
        return MethodOutput(total.astype(np.float32), raw=total.astype(np.float32))
