"""Shape-vs-texture probe: cue-conflict images (the shape of image A in the texture of image B, made by the
style transfer above), and how often the model's decision follows the shape rather than the texture.

Geirhos et al. 2019, https://arxiv.org/abs/1811.12231
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import permutations

import numpy as np

from ..backends.torch_import import import_torch
from ..errors import OptionError
from ..options import option
from .base import Request, Synthesis, Synthesized
from .loop import to_numpy
from .style import StyleOptions, stylize


@dataclass(frozen=True)
class ShapeTextureOptions:
    pairs: int = option(12, "most (shape, texture) pairs, taken from the images in order")
    steps: int = option(100, "style-transfer iterations per cue-conflict image")
    beta: float = option(1e4, "style weight of the transfer")

    def __post_init__(self):
        if self.pairs < 1 or self.steps < 1:
            raise ValueError("pairs and steps must be >= 1")


class ShapeTexture(Synthesis):
    """Shape share = shape decisions / (shape + texture decisions), over pairs whose classes differ."""

    name = "shape_texture"
    paper = "https://arxiv.org/abs/1811.12231"
    needs_images = 2
    Options = ShapeTextureOptions

    def synthesize(self, engine, request: Request, opts: ShapeTextureOptions) -> Synthesized:
        torch = import_torch()
        images = torch.as_tensor(np.stack(request.images), device=engine.device).permute(0, 3, 1, 2)
        with torch.no_grad():
            (logits,) = engine.tensors(images, (engine.logits,))
        classes = logits.argmax(1).cpu().numpy()
        pairs = [(a, b) for a, b in permutations(range(len(images)), 2) if classes[a] != classes[b]][: opts.pairs]
        if not pairs:
            raise OptionError("shape_texture needs images the model puts in at least two different classes")
        shape_idx, texture_idx = (list(v) for v in zip(*pairs, strict=True))
        style_opts = replace(StyleOptions(), steps=opts.steps, beta=opts.beta)
        mixed, history, extras = stylize(engine, images[shape_idx], images[texture_idx], style_opts, "shape_texture")
        with torch.no_grad():
            (mixed_logits,) = engine.tensors(mixed, (engine.logits,))
        decided = mixed_logits.argmax(1).cpu().numpy()
        shape_hits = decided == classes[shape_idx]
        texture_hits = decided == classes[texture_idx]
        decisive = int(shape_hits.sum() + texture_hits.sum())
        names = request.names
        captions = [f"{names[a]} ({classes[a]}) in {names[b]} ({classes[b]}) -> {d}"
                    for (a, b), d in zip(pairs, decided, strict=True)]
        extras.update(shape_share=float(shape_hits.sum() / decisive) if decisive else float("nan"),
                      shape_decisions=int(shape_hits.sum()), texture_decisions=int(texture_hits.sum()),
                      other_decisions=len(pairs) - decisive,
                      pairs=[[names[a], names[b], int(d)] for (a, b), d in zip(pairs, decided, strict=True)])
        return Synthesized(to_numpy(mixed), captions, history, extras=extras)
