"""Recipro-CAM: the layer's activations kept at one position at a time (zero elsewhere), the rest of the network
re-run on those h x w copies in one batch, and the target's probability for each copy is the map at that position.
Gradient-free and one batched pass over the head: onnxruntime only.

Byun & Lee 2022, https://arxiv.org/abs/2209.14074 (OpenVINO-XAI's default method)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..method import MethodOutput
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
    """Map value at each position = the target's score when the network runs on from the layer with only that
    position's activations (all channels) left."""

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
