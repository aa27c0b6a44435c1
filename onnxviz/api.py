"""The verbs for a first session: load_image, explain, methods. Each is thin over the objects that do the work
(reading.py, Explainer, the registry)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .catalog import plugins
from .estimate import Estimator
from .explainer import Explainer
from .explanation import Explanation
from .method import Method
from .model import Model
from .preprocess import Preprocessing
from .reading import ImageSource, load_image, read_batch
from .targets.spec import TargetSpec

__all__ = ["explain", "load_image", "plugins", "read_batch"]


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
