"""Occlusion: slide a baseline-filled window over the image and record how much the target score drops.

Zeiler & Fergus 2014, https://arxiv.org/abs/1311.2901
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..baselines import make_baseline
from ..method import Method
from ..options import option

BLOCK = 256  # windows materialized at once; the Context chunks them further for the backend


@dataclass(frozen=True)
class OcclusionOptions:
    window: tuple[int, ...] = option((16,), "window size in pixels: one value, or height,width")
    stride: tuple[int, ...] = option((8,), "step between windows: one value, or height,width")
    baseline: float | str | np.ndarray = option(
        0.0, "what fills the window: a value in the model's input space, mean, blur, an image path, or an array")
    blur_sigma: float = option(10.0, "Gaussian sigma in pixels for baseline=blur")

    def __post_init__(self):
        for name in ("window", "stride"):
            value = getattr(self, name)
            if len(value) not in (1, 2) or min(value) < 1:
                raise ValueError(f"{name} must be one or two positive integers, got {value}")


def _starts(size: int, window: int, stride: int) -> list[int]:
    """Window starts as Captum places them: ceil((size - window) / stride) + 1 positions, the last clipped."""
    return [k * stride for k in range(math.ceil(max(size - window, 0) / stride) + 1)]


class Occlusion(Method):
    """Score drop when each window is replaced by the baseline, averaged over the windows covering a pixel."""

    name = "occlusion"
    family = "perturbation"
    needs_image = True
    requires = "forward"
    paper = "https://arxiv.org/abs/1311.2901"
    Options = OcclusionOptions

    def explain(self, ctx, x: np.ndarray, opts: OcclusionOptions) -> np.ndarray:
        height, width = ctx.input_size(x)
        wh, ww = opts.window * 2 if len(opts.window) == 1 else opts.window
        sh, sw = opts.stride * 2 if len(opts.stride) == 1 else opts.stride
        windows = [(r, c) for r in _starts(height, wh, sh) for c in _starts(width, ww, sw)]
        clean = ctx.explained_scores(x)
        fill = make_baseline(opts.baseline, x, ctx.layout, ctx.sample_rng, opts.blur_sigma, ctx.image)
        out = np.zeros_like(x, dtype=np.float32)
        with ctx.progress(len(x) * len(windows), "occlusion") as bar:
            for i in range(len(x)):
                total = np.zeros((height, width), np.float64)
                count = np.zeros((height, width), np.float64)
                for b in range(0, len(windows), BLOCK):
                    block = windows[b : b + BLOCK]
                    batch = np.repeat(x[i : i + 1], len(block), axis=0)
                    for k, (r, c) in enumerate(block):
                        window = ctx.layout.window(slice(r, r + wh), slice(c, c + ww))
                        batch[k][window] = fill[i][window]
                    drops = clean[i] - ctx.for_samples([i] * len(block)).score(batch, on_chunk=bar.update)
                    for (r, c), drop in zip(block, drops, strict=True):
                        total[r : r + wh, c : c + ww] += drop
                        count[r : r + wh, c : c + ww] += 1
                pixel_map = (total / np.maximum(count, 1)).astype(np.float32)
                out[i] = ctx.over_channels(pixel_map[None])[0]
        return out
