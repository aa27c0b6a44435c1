"""DeepDream: from an input image, gradient ascent on the energy of chosen layers, octave by octave
(small to full size), with random shifts.

Mordvintsev, Olah & Tyka 2015, https://research.google/blog/inceptionism-going-deeper-into-neural-networks/
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backends.torch_import import import_torch
from ..options import option
from .base import Request, Synthesis, Synthesized
from .loop import to_numpy


@dataclass(frozen=True)
class DeepDreamOptions:
    layers: tuple[str, ...] = option((), "layers whose mean squared activation grows (default: the last spatial)")
    octaves: int = option(3, "scales, from small to the image's size")
    octave_scale: float = option(1.4, "size ratio between octaves")
    steps: int = option(20, "gradient steps per octave")
    lr: float = option(0.01, "step size (the gradient is normalized by its mean magnitude)")
    jitter: int = option(4, "random shift per step, in pixels")

    def __post_init__(self):
        if self.octaves < 1 or self.octave_scale <= 1 or self.steps < 1 or self.lr <= 0:
            raise ValueError("octaves >= 1, octave_scale > 1, steps >= 1, lr > 0")


class DeepDream(Synthesis):
    """Amplifies whatever the layers already see in the image."""

    name = "deepdream"
    paper = "https://research.google/blog/inceptionism-going-deeper-into-neural-networks/"
    needs_images = 1
    Options = DeepDreamOptions

    def synthesize(self, engine, request: Request, opts: DeepDreamOptions) -> Synthesized:
        torch = import_torch()
        layers = tuple(engine.layer(n).name for n in opts.layers) or (engine.model.default_layer.name,)
        image = torch.as_tensor(np.stack(request.images), device=engine.device).permute(0, 3, 1, 2)
        h, w = image.shape[2:]
        history = []
        with engine.progress(opts.octaves * opts.steps, "deepdream") as bar:
            for octave in reversed(range(opts.octaves)):
                size = (max(8, round(h / opts.octave_scale**octave)), max(8, round(w / opts.octave_scale**octave)))
                image = torch.nn.functional.interpolate(image, size=size, mode="bilinear", align_corners=False)
                for _ in range(opts.steps):
                    image, energy = self._step(engine, image, layers, opts, torch)
                    history.append(energy)
                    bar.set_postfix(energy=f"{float(energy.mean()):.4g}", refresh=False)
                    bar.update()
        captions = [f"{name}: dream on {', '.join(layers)}" for name in request.names]
        return Synthesized(to_numpy(image), captions, np.stack(history, axis=1), extras={"layers": list(layers)})

    @staticmethod
    def _step(engine, image, layers, opts, torch):
        dy, dx = engine.randint(-opts.jitter, opts.jitter + 1), engine.randint(-opts.jitter, opts.jitter + 1)
        shifted = torch.roll(image, (dy, dx), dims=(2, 3)).detach().requires_grad_(True)
        with torch.enable_grad():
            acts = engine.tensors(shifted, layers)
            energy = sum(a.pow(2).reshape(len(a), -1).mean(1) for a in acts)
            (grad,) = torch.autograd.grad(energy.sum(), shifted)
        grad = grad / grad.abs().reshape(len(grad), -1).mean(1).clamp_min(1e-8).reshape(-1, 1, 1, 1)
        stepped = (shifted + opts.lr * grad).clamp(0, 1).detach()
        return torch.roll(stepped, (-dy, -dx), dims=(2, 3)), energy.detach().cpu().numpy()
