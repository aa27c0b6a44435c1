"""onnxviz.report: explain images with several methods and write one self-contained HTML page with the
model's facts, predictions, every overlay and the faithfulness metrics."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .api import explain, load_image
from .attacks.classnames import class_names as find_class_names
from .bundled import torch_available
from .evaluation.complexity import complexity, sparseness
from .evaluation.faithfulness import faithfulness, target_scorer
from .inspect.summary import facts
from .io import write_bytes_atomic
from .model import Model, load
from .registry import get
from .targets import Target
from .targets.spec import TargetSpec
from .viz.html_report import report_html


def report(model: Model | str | os.PathLike, images: Sequence[str | os.PathLike], methods: Sequence[str],
           out: str | os.PathLike, *, metrics: bool = True, steps: int = 16,
           options: dict[str, dict[str, Any]] | None = None, class_names: str | os.PathLike | list[str] | None = None,
           progress: bool = True, target: TargetSpec = None) -> Path:
    """Write `out`/report.html and return its path. `target`: what every method explains (default: the top class)."""
    model = model if isinstance(model, Model) else load(model)
    x = load_image(list(images), model)
    explanations = [explain(model, x, m, target=target, progress=progress, **(options or {}).get(m, {}))
                    for m in methods]
    scorer = target_scorer(model, target, x) if metrics else None
    tensor, _ = model.score_tensor(Target())
    (logits,) = model.run(x, (tensor,))
    scores = {}
    if metrics:
        for ex in explanations:
            maps = ex.maps()
            magnitude = np.abs(maps) if ex.signed else maps
            f = faithfulness(model, x, magnitude, ex.targets, steps, scorer=scorer)
            scores[ex.method] = {"deletion AUC (lower is better)": float(f.deletion_auc.mean()),
                                 "insertion AUC (higher is better)": float(f.insertion_auc.mean()),
                                 "average drop %": f.average_drop, "increase %": f.increase,
                                 "sparseness (Gini, higher is sparser)": float(sparseness(magnitude).mean()),
                                 "complexity (entropy, lower is simpler)": float(complexity(magnitude).mean())}
    needs_torch = any(get(m).requires == "gradients" for m in methods)
    page = report_html(model.name, facts(model, with_torch=needs_torch and torch_available()), explanations,
                       [Path(p).name for p in images], logits.reshape(len(x), -1),
                       find_class_names(class_names, model.metadata), scores)
    return write_bytes_atomic(Path(out) / "report.html", page.encode())
