"""Deep Feature Factorization: non-negative matrix factorization of a layer's activations into concepts (channel
vectors) and where each concept lies in the image; each concept runs through the rest of the network alone (its
vector at every position) to say which classes it supports. pytorch-grad-cam's `DeepFeatureFactorization`, one
image at a time.

Collins, Achanta & Süsstrunk 2018, https://arxiv.org/abs/1806.10206
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DependencyError
from ..layers import map_layout
from ..method import MethodOutput
from ..options import option
from .cam import CamMethod


@dataclass(frozen=True)
class DffOptions:
    n_components: int = option(5, "concepts per image")
    top_k: int = option(3, "classes listed per concept")

    def __post_init__(self):
        if not 1 <= self.n_components <= 256:
            raise ValueError(f"n_components must be 1..256, not {self.n_components}")
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, not {self.top_k}")


def factorize(acts: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """One image's (C, h, w) activations -> (concepts (C, K), maps (K, h, w)); each channel shifted by its minimum
    for the factorization and the shift added back to the concepts, as pytorch-grad-cam does."""
    try:
        from sklearn.decomposition import NMF
    except ImportError:
        raise DependencyError('dff needs scikit-learn: pip install "onnxviz[concepts]"') from None
    flat = np.nan_to_num(acts).reshape(acts.shape[0], -1)
    offset = flat.min(axis=1)
    nmf = NMF(n_components=n_components, init="random", random_state=0)
    concepts = nmf.fit_transform(flat - offset[:, None]) + offset[:, None]
    return concepts, nmf.components_.reshape(n_components, *acts.shape[1:])


class Dff(CamMethod):
    """The concept that most supports the target, where it lies; every concept's map, vector and classes in
    extras."""

    name = "dff"
    requires = "forward"
    paper = "https://arxiv.org/abs/1806.10206"
    Options = DffOptions

    def explain(self, ctx, x: np.ndarray, opts: DffOptions) -> MethodOutput:
        map_layout(ctx.layer)
        raw = ctx.activations(x)
        axes = map_layout(ctx.layer, raw.shape)
        acts = axes.to_channels_first(raw)
        maps, vectors, scores, classes = [], [], [], []
        tensor = ctx.score_tensor
        for i in range(len(x)):
            concepts, concept_maps = factorize(acts[i], opts.n_components)
            tiled = np.broadcast_to(concepts.T[:, :, None, None], (opts.n_components, *acts.shape[1:]))
            fed = axes.from_channels_first(np.ascontiguousarray(tiled, dtype=raw.dtype),
                                           like=np.repeat(raw[i:i + 1], opts.n_components, axis=0))
            (logits,) = ctx.outputs_from(ctx.layer.name, np.ascontiguousarray(fed),
                                         np.repeat(x[i:i + 1], opts.n_components, axis=0), (tensor,))
            logits = logits.reshape(opts.n_components, -1)
            maps.append(concept_maps)
            vectors.append(concepts)
            scores.append(logits)
            classes.append(np.argsort(-logits, axis=1)[:, : opts.top_k])
        target_scores = np.stack([s[:, t] for s, t in zip(scores, ctx.targets, strict=True)])
        best = target_scores.argmax(axis=1)
        heat = np.stack([m[k] for m, k in zip(maps, best, strict=True)]).astype(np.float32)
        return MethodOutput(heat, raw=heat, extras={
            "concept_maps": np.stack(maps).astype(np.float32), "concepts": np.stack(vectors).astype(np.float32),
            "concept_scores": np.stack(scores).astype(np.float32), "concept_classes": np.stack(classes).tolist(),
            "concept_for_target": best.tolist(),
        })
