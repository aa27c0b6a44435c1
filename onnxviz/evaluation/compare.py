"""onnxviz.compare: the same images through several models (exports of one network, or different networks),
side by side, with agreement between every pair of models."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..api import explain, load_image
from ..errors import OptionError
from ..explanation import Explanation
from ..inspect.summary import totals
from ..io import read_image, save_png, write_bytes_atomic
from ..model import Model, load
from ..targets import Target, softmax
from ..viz.grid import grid
from ..viz.notebook import Displayable
from .agreement import spearman, ssim, top_iou

DEFAULT_TOLERANCE = 1e-3  # largest logit difference, relative to max(1, |logit|), between exports of one network


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    same_network: bool  # same parameter count and classes: exports of one network are expected to agree
    max_abs_diff: float | None  # logits, when both have the same number of classes
    max_prob_diff: float | None
    top1_agreement: float | None
    methods: dict[str, dict[str, float]] = field(default_factory=dict)  # method -> spearman / iou / ssim
    export_problem: bool = False

    def describe(self) -> str:
        parts = [f"{self.a} vs {self.b}:"]
        if self.max_abs_diff is not None:
            parts.append(f"outputs max |diff| {self.max_abs_diff:.3g} (probabilities {self.max_prob_diff:.3g}), "
                         f"top-1 agreement {self.top1_agreement:.0%}")
        for m, s in self.methods.items():
            parts.append(f"{m}: Spearman {s['spearman']:.3f}, top-10% IoU {s['top_iou']:.3f}, SSIM {s['ssim']:.3f}")
        if self.export_problem:
            parts.append("EXPORT PROBLEM: the same network gives different outputs")
        return "  ".join(parts)


@dataclass(frozen=True)
class Comparison(Displayable):
    models: list[str]
    images: list[str]
    predictions: dict[str, list[int]]
    explanations: dict[tuple[str, str], Explanation]
    pairs: list[Pair]
    tolerance: float

    def _picture(self) -> np.ndarray:
        return self.figure()

    def _caption(self) -> str:
        return " | ".join(pair.describe() for pair in self.pairs) or ", ".join(self.models)

    def figure(self, cell: int = 192) -> np.ndarray:
        """One row per image; one column per (model, method) overlay, captioned with the prediction."""
        keys = list(self.explanations)
        rows, captions = [], []
        for i, name in enumerate(self.images):
            rows.append([self.explanations[k].overlay(i) for k in keys])
            captions.append([f"{name[:14]} {k[0][:14]} {k[1]} -> {self.predictions[k[0]][i]}" for k in keys])
        return grid(rows, captions, cell=cell)

    def to_dict(self) -> dict[str, Any]:
        return {"models": self.models, "images": self.images, "predictions": self.predictions,
                "tolerance": self.tolerance, "pairs": [p.__dict__ for p in self.pairs]}

    def save(self, out: str | os.PathLike) -> list[Path]:
        out = Path(out)
        return [save_png(out / "compare.png", self.figure()),
                write_bytes_atomic(out / "compare.json", json.dumps(self.to_dict(), indent=2).encode())]


def _unique_names(models: list[Model]) -> list[str]:
    names = []
    for m in models:
        name, k = m.name, 2
        while name in names:
            name, k = f"{m.name}#{k}", k + 1
        names.append(name)
    return names


def compare(models: Sequence[Model | str | os.PathLike], images: Sequence[str | os.PathLike | np.ndarray],
            methods: Sequence[str] = ("gradcam",), target=None, tolerance: float = DEFAULT_TOLERANCE,
            progress: bool = True, **options: Any) -> Comparison:
    """Explain `images` (paths or RGB [0, 1] arrays) with every method on every model. The target defaults to
    the first model's prediction, so every model explains the same class."""
    loaded = [m if isinstance(m, Model) else load(m) for m in models]
    if len(loaded) < 2:
        raise OptionError(f"compare needs at least two models, got {len(loaded)}")
    names = _unique_names(loaded)
    sources = [read_image(s) if isinstance(s, (str, os.PathLike)) else np.asarray(s, np.float32) for s in images]
    labels = [Path(s).name if isinstance(s, (str, os.PathLike)) else f"image {k}" for k, s in enumerate(images)]
    logits, predictions, explanations = {}, {}, {}
    for name, model in zip(names, loaded, strict=True):
        x = load_image(sources, model)
        tensor, _ = model.score_tensor(Target())
        (z,) = model.run(x, (tensor,))
        logits[name] = z.reshape(len(z), -1)
        predictions[name] = logits[name].argmax(axis=1).tolist()
        common = target if target is not None else predictions[names[0]]
        for method in methods:
            explanations[(name, method)] = explain(model, x, method, target=common, progress=progress, **options)
        if explanations[(name, methods[0])].extras.get("explained"):  # a detection, a unit...: its own prediction
            predictions[name] = explanations[(name, methods[0])].predictions.tolist()
    sizes = {name: totals(m)[0] for name, m in zip(names, loaded, strict=True)}
    pairs = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            a, b = names[i], names[j]
            pairs.append(_pair(a, b, logits, explanations, methods, sizes, tolerance))
    return Comparison(names, labels, predictions, explanations, pairs, tolerance)


def _pair(a: str, b: str, logits: dict, explanations: dict, methods, sizes: dict, tolerance: float) -> Pair:
    za, zb = logits[a], logits[b]
    comparable = za.shape == zb.shape
    same = comparable and abs(sizes[a] - sizes[b]) <= 0.001 * max(sizes[a], 1)
    diff = prob = agree = None
    if comparable:
        diff = float(np.abs(za - zb).max())
        prob = float(np.abs(softmax(za.astype(np.float64)) - softmax(zb.astype(np.float64))).max())
        agree = float((za.argmax(axis=1) == zb.argmax(axis=1)).mean())
    scores = {}
    for m in methods:
        ma, mb = explanations[(a, m)].maps(), explanations[(b, m)].maps()
        per = [(spearman(x, y), top_iou(x, y), ssim(x, y)) for x, y in zip(ma, mb, strict=True)]
        scores[m] = dict(zip(("spearman", "top_iou", "ssim"), np.mean(per, axis=0).tolist(), strict=True))
    scale = max(1.0, float(np.abs(za).max())) if comparable else 1.0
    problem = bool(same and diff is not None and diff > tolerance * scale)
    return Pair(a, b, same, diff, prob, agree, scores, problem)
