"""The verbs for a first session: load_image, explain, methods. Each is thin over the objects that do the work
(reading.py, Explainer, the registry)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import registry
from .estimate import Estimator
from .explainer import Explainer
from .explanation import Explanation
from .method import Method
from .model import Model
from .options import describe
from .preprocess import Preprocessing
from .reading import ImageSource, load_image, read_batch
from .targets.spec import TargetSpec

__all__ = ["explain", "load_image", "plugins", "read_batch"]


def plugins(name: str | None = None) -> list[dict[str, Any]]:
    """Registered plugins of every kind (built-in and third-party): name, kind, family, needs, options; broken
    ones with their error. With `name`, only that one (an unknown or broken name is a MethodError that suggests
    close ones)."""
    if name is not None:
        registry.get(name)
    rows = []
    for entry in registry.all_entries():
        if name is not None and entry.name != name:
            continue
        row: dict[str, Any] = {"name": entry.name, "distribution": entry.dist, "error": entry.error}
        if entry.conflict:
            row["error"] = f"also claimed by {entry.conflict}"
        if entry.cls is not None:
            cls = entry.cls
            row.update(kind=cls.kind, family=cls.family, requires=cls.requires, needs_layer=cls.needs_layer,
                       output=getattr(cls, "output", "image"), paper=cls.paper, summary=cls.describe(),
                       options=describe(cls.Options))
        rows.append(row)
    return rows


def explain(model: Model | str | os.PathLike, x: np.ndarray | ImageSource | Sequence[ImageSource],
            method: str | type[Method] | Method = "saliency", /, target: TargetSpec = None, layer: str | None = None, *,
            batch_size: int = 32, seed: int = 0, progress: bool = True,
            preprocessing: Preprocessing | None = None, gradient: str | Estimator = "auto",
            image_sizes: Sequence[tuple[int, int]] | None = None, **options: Any) -> Explanation:
    """Explain `x` (a batch in the model's layout, or image paths) with one method: `Explainer(...).explain(x,
    target)` in one call (model, x and method are positional, so a method may have an option called `method`).
    To explain many batches with one method, build the Explainer once."""
    explainer = Explainer(model, method, layer=layer, gradient=gradient, batch_size=batch_size, seed=seed,
                          progress=progress, **options)
    return explainer.explain(x, target, image_sizes=image_sizes, preprocessing=preprocessing)
