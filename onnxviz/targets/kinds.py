"""Target kinds: how a `Target` becomes a `Score` on the clean input. Each kind is one small class; `resolve` asks
them in order. Today's kinds: a class (logit or softmax probability) and a class over a segmentation region."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import onnx

from ..errors import TargetError
from .outputs import check_class_target
from .regions import region_masks
from .scores import ClassScore, Score, pick
from .spec import Target, check_range

# an onnxviz.Model; not imported, because the model imports targets (a Target is part of what it resolves)
Model = Any


@dataclass(frozen=True)
class Resolved:
    """A target resolved once on the clean input: the Score, the clean scores, predictions and the clean output."""

    score: Score
    scores: np.ndarray
    predictions: np.ndarray
    clean: np.ndarray


class TargetKind:
    """A kind of target. `accepts(target)` says whether it handles the spec; `resolve` runs the clean forward it
    needs and fixes everything that depends on it (top1, region masks, a matched detection) into a Score."""

    name: ClassVar[str]

    def accepts(self, target: Target) -> bool:
        raise NotImplementedError

    def resolve(self, model: Model, target: Target, x: np.ndarray, indices: np.ndarray | None,
                photos: list[tuple[int, int]] | None, batch_size: int) -> Resolved:
        raise NotImplementedError


class ClassKind(TargetKind):
    """A class of a classifier (its logit, or its probability with softmax:), or of a segmentation output summed
    over a region (`7@predicted`, boxes, masks). "top1" is the prediction on the clean input."""

    name = "class"

    def accepts(self, target: Target) -> bool:
        return True

    def resolve(self, model: Model, target: Target, x: np.ndarray, indices: np.ndarray | None,
                photos: list[tuple[int, int]] | None, batch_size: int) -> Resolved:
        tensor, softmax = model.score_tensor(target)
        clean = model.run(x, (tensor,), batch_size)[0]
        if clean.ndim < 2:
            raise TargetError(f"output {tensor!r} has shape {clean.shape}: no class axis to explain")
        check_class_target(model.proto, tensor, clean.shape, output=target.output or model.outputs[0])
        predictions = clean.reshape(len(x), clean.shape[1], -1).sum(axis=2).argmax(axis=1)
        indices = predictions if indices is None else indices
        check_range(indices, clean.shape[1])
        masks = region_masks(target.region, clean, indices, photos, _threshold(model.proto, tensor))
        score = ClassScore((tensor,), np.asarray(indices, dtype=np.int64), softmax, masks)
        scores = pick(clean, indices, softmax, masks).astype(np.float32)  # the clean forward already has them
        return Resolved(score, scores, predictions, clean)


def _threshold(proto: onnx.ModelProto, tensor: str) -> float:
    """Where a one-channel map says yes: 0.5 for probabilities (a Sigmoid made it), else 0 (logits)."""
    node = next((n for n in proto.graph.node if tensor in n.output), None)
    return 0.5 if node is not None and node.op_type == "Sigmoid" else 0.0


KINDS: list[TargetKind] = [ClassKind()]  # asked in order; a new kind goes before the catch-all class kind


def resolve(model: Model, target: Target, x: np.ndarray, indices: np.ndarray | None,
            photos: list[tuple[int, int]] | None, batch_size: int) -> Resolved:
    """The first kind that accepts `target`, resolved on the clean batch `x`."""
    kind = next(k for k in KINDS if k.accepts(target))
    return kind.resolve(model, target, x, indices, photos, batch_size)
