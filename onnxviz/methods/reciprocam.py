"""Recipro-CAM: the layer's activations kept at one position at a time (zero elsewhere), the rest of the network
re-run on those h x w copies in one batch, and the target's probability for each copy is the map at that position.
ViT-ReciproCAM does the same to the patch tokens of a transformer block, on both of its paths (the LayerNorm that
feeds the attention and the residual). Gradient-free, one batched pass over the head: onnxruntime only.

Recipro-CAM: Byun & Lee 2022, https://arxiv.org/abs/2209.14074 (OpenVINO-XAI's default method)
ViT-ReciproCAM: Byun & Lee 2023, https://arxiv.org/abs/2310.02588
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import MethodError
from ..method import Method, MethodOutput
from ..options import option
from .cam import CamMethod

BLOCK = 64  # positions whose masked copies are materialized at once
GAUSSIAN = np.outer([1, 2, 1], [1, 2, 1]) / 16.0  # the paper's 3 x 3 spatial kernel


@dataclass(frozen=True)
class ReciproCamOptions:
    kernel: Literal["point", "gaussian"] = option(
        "point", "what each copy keeps: the position alone (OpenVINO-XAI) or a 3 x 3 Gaussian around it (the paper)")
    score: Literal["softmax", "target"] = option(
        "softmax", "softmax: the target class's probability (the paper); target: the target's own score (a logit, "
                   "a sigmoid output, a region), negative values clipped by the CAM's ReLU")


@dataclass(frozen=True)
class VitReciproCamOptions:
    kernel: Literal["point", "gaussian"] = option(
        "gaussian", "what each copy keeps of the patch grid: one token, or a 3 x 3 Gaussian around it (the paper)")
    score: Literal["softmax", "target"] = option("softmax", "softmax: the target class's probability; target: "
                                                            "the target's own score (OpenVINO-XAI reads the logits)")
    class_token: bool = option(True, "keep the prefix tokens (class, distillation, registers) in every copy; "
                                     "false zeroes them")


def position_masks(height: int, width: int, kernel: str) -> np.ndarray:
    """(h * w, h, w): mask k keeps position k = row * w + col (row-major), or the Gaussian around it."""
    masks = np.zeros((height * width, height + 2, width + 2), np.float32)
    for k in range(height * width):
        row, col = divmod(k, width)
        if kernel == "point":
            masks[k, row + 1, col + 1] = 1
        else:
            masks[k, row : row + 3, col : col + 3] = GAUSSIAN
    return masks[:, 1:-1, 1:-1]


class ReciproCam(CamMethod):
    """The target's probability when only one position of the layer is left, position by position.

    The network runs on from the layer with that position's activations (all channels) kept, the rest zeroed."""

    name = "reciprocam"
    requires = "forward"
    paper = "https://arxiv.org/abs/2209.14074"
    Options = ReciproCamOptions

    def explain(self, ctx, x: np.ndarray, opts: ReciproCamOptions) -> MethodOutput:
        acts, _ = self.layer_tensors(ctx, x)
        n, _, height, width = acts.shape
        masks = position_masks(height, width, opts.kernel)
        scoring = ctx.probabilities() if opts.score == "softmax" else ctx
        maps = np.empty((n, height * width), np.float32)
        with ctx.progress(n * len(masks), "reciprocam") as bar:
            for i in range(n):
                like = ctx.activations(x[i : i + 1]) if ctx.layer.tokens else None  # the prefix tokens stay
                for start in range(0, len(masks), BLOCK):
                    block = masks[start : start + BLOCK]
                    copies = (acts[i : i + 1] * block[:, None]).astype(acts.dtype)  # (positions, C, h, w)
                    inputs = np.broadcast_to(x[i : i + 1], (len(block), *x.shape[1:]))  # a view: no copies
                    maps[i, start : start + len(block)] = scoring.for_samples([i] * len(block)).score_from(
                        ctx.layer.name, ctx.layer.axes.from_channels_first(copies, like), inputs, on_chunk=bar.update)
        cam = np.maximum(maps.reshape(n, height, width), 0)
        return MethodOutput(cam, raw=cam)


class VitReciproCam(Method):
    """Recipro-CAM on a transformer block, masking both of its paths.

    The block's input (the residual) and its first LayerNorm's output both keep one patch position (prefix tokens
    kept), and the network runs on from both; --layer names the LayerNorm (default: the last block's, `block:-1`)."""

    name = "vit_reciprocam"
    family = "cam"
    requires = "forward"
    needs_layer = True
    output = "map"
    paper = "https://arxiv.org/abs/2310.02588"
    Options = VitReciproCamOptions

    def explain(self, ctx, x: np.ndarray, opts: VitReciproCamOptions) -> MethodOutput:
        layer = ctx.layer
        if layer.op_type != "LayerNormalization" or not layer.tokens:
            raise MethodError(f"vit_reciprocam masks a transformer block's input and its first LayerNorm; {layer.name} "
                              f"is a {layer.op_type} with layout {layer.layout or 'none'}: pass --layer block:-1 "
                              "(or block:K), or use reciprocam on any feature map or token layer")
        axes, names = layer.axes, (ctx.node_input(), layer.name)
        height, width = axes.grid
        masks = position_masks(height, width, opts.kernel)
        scoring = ctx.probabilities() if opts.score == "softmax" else ctx
        maps = np.empty((len(x), len(masks)), np.float32)
        with ctx.progress(len(x) * len(masks), "vit_reciprocam") as bar:
            for i in range(len(x)):
                tensors = ctx.outputs(x[i : i + 1], names)
                for start in range(0, len(masks), BLOCK):
                    block = masks[start : start + BLOCK, None]
                    copies = [axes.from_channels_first((axes.to_channels_first(t) * block).astype(t.dtype),
                                                       t if opts.class_token else None) for t in tensors]
                    inputs = np.broadcast_to(x[i : i + 1], (len(block), *x.shape[1:]))
                    maps[i, start : start + len(block)] = scoring.for_samples([i] * len(block)).score_from(
                        names, copies, inputs, on_chunk=bar.update)
        cam = np.maximum(maps.reshape(len(x), height, width), 0)
        return MethodOutput(cam, raw=cam)
