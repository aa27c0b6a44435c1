"""What every target kind shares: the `TargetKind` base a plugin subclasses and the `Resolved` record it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .scores import Score
from .spec import Target

# an onnxviz.Model; not imported, because the model imports targets (a Target is part of what it resolves)
Model = Any


@dataclass(frozen=True)
class Resolved:
    """A target resolved once on the clean input: the Score, the clean scores, predictions and the clean output;
    `explained` (per row, shown as the explained index: a class, a channel, an element), `labels` (per row, what
    was explained in words) and `extras` (what the pictures draw: detections, the explained box)."""

    score: Score
    scores: np.ndarray
    predictions: np.ndarray
    clean: np.ndarray
    explained: np.ndarray | None = None
    labels: list[str] | None = None
    extras: dict[str, Any] = field(default_factory=dict)


class TargetKind:
    """A kind of target, registered under the entry-point group `onnxviz.targets`. `words` are the spec words it
    parses (`det` in `det:0`); `accepts(target)` says whether it resolves a parsed Target; `resolve` runs the clean
    forward it needs and fixes everything that depends on it (top1, region masks, a matched detection) into a Score."""

    name: ClassVar[str]
    words: ClassVar[tuple[str, ...]] = ()

    def accepts(self, target: Target) -> bool:
        return target.kind in self.words

    def resolve(self, model: Model, target: Target, x: np.ndarray, indices: np.ndarray | None,
                photos: list[tuple[int, int]] | None, batch_size: int) -> Resolved:
        raise NotImplementedError
