"""Feature inversion: an image, from noise, whose activations at a layer match those of a given image,
under a total-variation prior.

Mahendran & Vedaldi 2015, https://arxiv.org/abs/1412.0035
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..backends.torch_import import import_torch
from ..errors import OptionError
from ..options import option
from .base import Request, Synthesis, Synthesized
from .loop import Schedule, ascend


@dataclass(frozen=True)
class InvertOptions:
    steps: int = option(300, "optimization steps")
    lr: float = option(0.05, "Adam learning rate")
    param: Literal["pixel", "fourier"] = option("pixel", "pixel or fourier")
    tv: float = option(0.05, "weight of total variation")
    frames: int = option(0, "snapshots for a GIF of the optimization (0: none)")

    def __post_init__(self):
        if self.steps < 1 or self.lr <= 0 or self.tv < 0:
            raise ValueError("steps >= 1, lr > 0, tv >= 0")


class Invert(Synthesis):
    """Minimizes ||A(x) - A(image)||^2 / ||A(image)||^2 + tv * TV(x) from noise."""

    name = "invert"
    paper = "https://arxiv.org/abs/1412.0035"
    needs_images = 1
    needs_layer = True  # the layer whose activations are matched (default: the last spatial layer)
    Options = InvertOptions

    def synthesize(self, engine, request: Request, opts: InvertOptions) -> Synthesized:
        torch = import_torch()
        if request.layer is None:
            raise OptionError("invert needs a layer to match: pass --layer (Python: layer=...)")
        layer = request.layer.name
        originals = torch.as_tensor(np.stack(request.images), device=engine.device).permute(0, 3, 1, 2)
        with torch.no_grad():
            (goal,) = engine.tensors(originals, (layer,))
        norm = goal.reshape(len(goal), -1).pow(2).sum(1).clamp_min(1e-12)

        def closeness(images):
            (acts,) = engine.tensors(images, (layer,))
            return -(acts - goal).reshape(len(acts), -1).pow(2).sum(1) / norm

        schedule = Schedule(opts.steps, opts.lr, opts.param, tv=opts.tv, frames=opts.frames)
        images, history, frames = ascend(engine, len(originals), closeness, schedule, "invert")
        start, end = -history[:, 0], -history[:, -1]
        captions = [f"{name} from {layer}" for name in request.names]
        extras = {"layer": layer, "start_distance": start.tolist(), "final_distance": end.tolist(),
                  "reduction": (1 - end / np.maximum(start, 1e-12)).tolist()}
        return Synthesized(images, captions, history, frames, extras)
