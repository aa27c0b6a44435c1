"""`onnxviz.evaluate`: how faithful each method's explanations are on a batch (deletion / insertion AUC, average
drop, increase in confidence) and, optionally, the cascading-randomization sanity check. The CLI's `evaluate`
prints and saves what this returns."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..explainer import Explainer
from ..io import write_bytes_atomic
from ..model import Model, load
from ..reading import ImageSource, read_batch
from ..targets.spec import TargetSpec
from .faithfulness import Faithfulness, faithfulness, target_scorer
from .sanity import Sanity, cascading_randomization


@dataclass(frozen=True)
class Evaluation:
    """Per method: its faithfulness scores, and its sanity check when one was asked for."""

    faithfulness: dict[str, Faithfulness]
    sanity: dict[str, Sanity] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """The JSON-ready record (`evaluate.json`)."""
        out = {}
        for method, scores in self.faithfulness.items():
            row = {"deletion_auc": scores.deletion_auc.tolist(), "insertion_auc": scores.insertion_auc.tolist(),
                   "average_drop": scores.average_drop, "increase": scores.increase}
            if method in self.sanity:
                check = self.sanity[method]
                row["sanity"] = {"layers": check.layers, "spearman_abs": check.spearman_abs.tolist(),
                                 "ssim": check.ssim.tolist(), "passed": check.passed}
            out[method] = row
        return out

    def save(self, out: str | os.PathLike) -> Path:
        return write_bytes_atomic(Path(out) / "evaluate.json", json.dumps(self.as_dict(), indent=2).encode())


def evaluate(model: Model | str | os.PathLike, images: np.ndarray | ImageSource | Sequence[ImageSource],
             methods: Sequence[str] = ("gradcam",), *, steps: int = 32, sanity: bool = False,
             target: TargetSpec = None) -> Evaluation:
    """Score each method's maps of `images` (paths, arrays or a model-space batch) for `target` (default: the top
    class; a detection, similarity, unit or value target is followed by its own score): signed maps are scored by
    their magnitude. With `sanity`, also randomize the weights from the top layer down and check the maps change."""
    model = model if isinstance(model, Model) else load(model)
    x = images if isinstance(images, np.ndarray) else read_batch(images, model)[0]
    scorer = target_scorer(model, target, x)
    scores, checks = {}, {}
    for method in dict.fromkeys(methods):
        ex = Explainer(model, method, progress=False).explain(x, target)
        maps = ex.maps()
        scores[method] = faithfulness(model, ex.inputs, np.abs(maps) if ex.signed else maps, ex.targets, steps,
                                      scorer=scorer)
        if sanity:
            checks[method] = cascading_randomization(model, ex.inputs, method)
    return Evaluation(scores, checks)
