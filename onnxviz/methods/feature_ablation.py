"""Feature ablation: each segment replaced by the baseline alone, the drop of the score is its attribution (as
Captum's FeatureAblation with a feature mask).

Zeiler & Fergus 2014 (occlusion of regions), https://arxiv.org/abs/1311.2901
"""

from __future__ import annotations

import numpy as np

from ..method import Method
from .coalitions import CoalitionOptions, scores, segments, spread


class FeatureAblation(Method):
    """Score drop when each segment alone shows the baseline (onnxruntime only)."""

    name = "feature_ablation"
    family = "perturbation"
    needs_image = True
    requires = "forward"
    paper = "https://arxiv.org/abs/1311.2901"
    Options = CoalitionOptions

    def explain(self, ctx, x: np.ndarray, opts: CoalitionOptions) -> np.ndarray:
        labels, fill = segments(ctx, x, opts)
        clean = ctx.explained_scores(x)
        out = np.zeros(x.shape, np.float32)
        with ctx.progress(sum(int(lab.max()) + 1 for lab in labels), self.name) as bar:
            for i, lab in enumerate(labels):
                groups = int(lab.max()) + 1
                z = 1 - np.eye(groups, dtype=np.int8)  # row g: every segment but g
                out[i] = spread(clean[i] - scores(ctx, i, x, fill, lab, z, bar.update), lab)
        return out
