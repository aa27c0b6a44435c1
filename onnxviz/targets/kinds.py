"""Target kinds: how a `Target` becomes a `Score` on the clean input. Each kind is one small class; `resolve` asks
the plugin kinds, then the built-in ones: detections (det:, box:, class:K@all), a similarity to a reference
(similar:), an output element (value:), a unit of a layer (unit:), and the class kind (a logit or softmax
probability, over a segmentation region or not)."""

from __future__ import annotations

import warnings
from functools import lru_cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

import numpy as np

from ..errors import TargetError
from .base import Model, Resolved, TargetKind
from .detection import DetectionKind
from .embedding import SimilarityKind
from .outputs import check_class_target, declared_shape
from .regions import region_masks
from .scores import ClassScore, pick
from .spec import KIND_WORDS, WORD_SOURCES, Target, check_range, word_parser
from .unit import UnitKind
from .value import ValueKind

if TYPE_CHECKING:  # onnx takes 0.6 s to import; listing methods must not pay it
    import onnx


class ClassKind(TargetKind):
    """A class of a classifier (its logit, or its probability with softmax:), or of a segmentation output summed
    over a region (`7@predicted`, boxes, masks). "top1" is the prediction on the clean input."""

    name = "class"
    words = ("class",)

    def accepts(self, target: Target) -> bool:
        return target.kind == "class" and target.region != "all"

    def resolve(self, model: Model, target: Target, x: np.ndarray, indices: np.ndarray | None,
                photos: list[tuple[int, int]] | None, batch_size: int) -> Resolved:
        tensor, _ = model.score_tensor(target)
        return self.from_clean(model, target, model.run(x, (tensor,), batch_size)[0], indices, photos)

    def from_clean(self, model: Model, target: Target, clean: np.ndarray, indices: np.ndarray | None,
                   photos: list[tuple[int, int]] | None) -> Resolved:
        """Resolved from the clean output of the score tensor, wherever it was computed."""
        tensor, softmax = model.score_tensor(target)
        if clean.ndim < 2:
            raise TargetError(f"output {tensor!r} has shape {clean.shape}: no class axis to explain")
        check_class_target(model.proto, tensor, clean.shape, output=target.output or model.outputs[0])
        predictions = clean.reshape(len(clean), clean.shape[1], -1).sum(axis=2).argmax(axis=1)
        indices = predictions if indices is None else indices
        check_range(indices, clean.shape[1])
        masks = region_masks(target.region, clean, indices, photos, _threshold(model.proto, tensor))
        score = ClassScore((tensor,), np.asarray(indices, dtype=np.int64), softmax, masks)
        scores = pick(clean, indices, softmax, masks).astype(np.float32)  # the clean forward already has them
        return Resolved(score, scores, predictions, clean)

    def deferred(self, model: Model, target: Target, indices: np.ndarray | None, n: int) -> ClassScore | None:
        """The score of given classes of a plain classifier output (N, C), checked without running the model, so
        that a gradient method's first pass over the clean batch can be its clean forward too; None when the
        clean forward is needed first (top1, a region, an output whose class count the graph leaves open)."""
        if indices is None or target.region is not None:
            return None
        tensor, softmax = model.score_tensor(target)
        shape = declared_shape(model.proto, tensor)
        if shape is None or len(shape) != 2 or not isinstance(shape[1], int):
            return None
        check_class_target(model.proto, tensor, (n, shape[1]), output=target.output or model.outputs[0])
        check_range(indices, shape[1])
        return ClassScore((tensor,), np.asarray(indices, dtype=np.int64), softmax, None)


def _threshold(proto: onnx.ModelProto, tensor: str) -> float:
    """Where a one-channel map says yes: 0.5 for probabilities (a Sigmoid made it), else 0 (logits)."""
    node = next((n for n in proto.graph.node if tensor in n.output), None)
    return 0.5 if node is not None and node.op_type == "Sigmoid" else 0.0


KINDS: list[TargetKind] = [DetectionKind(), SimilarityKind(), ValueKind(), UnitKind(), ClassKind()]


def resolve(model: Model, target: Target, x: np.ndarray, indices: np.ndarray | None,
            photos: list[tuple[int, int]] | None, batch_size: int) -> Resolved:
    """The first kind that accepts `target`, resolved on the clean batch `x`."""
    return kind_for(target).resolve(model, target, x, indices, photos, batch_size)


def kind_for(target: Target) -> TargetKind:
    """The kind that resolves `target`: the first that accepts it, other distributions' kinds first."""
    return next(k for k in [*plugin_kinds(), *KINDS] if k.accepts(target))


@lru_cache(maxsize=1)
def plugin_kinds() -> tuple[TargetKind, ...]:
    """Target kinds other distributions register under `onnxviz.targets` (built-in kinds are in KINDS); their words
    become spec words. A kind that fails to load is left out with a warning naming it."""
    found = []
    for ep in entry_points(group="onnxviz.targets"):
        try:
            kind = ep.load()()
            if not isinstance(kind, TargetKind) or not kind.words:
                raise TypeError("not a TargetKind with words")
        except Exception as exc:  # a broken plugin must not take the built-in kinds down
            warnings.warn(f"onnxviz: target kind {ep.name!r} ({ep.value}) is broken: {type(exc).__name__}: {exc}",
                          stacklevel=2)
            continue
        for word in kind.words:
            KIND_WORDS.setdefault(word, word_parser(word))
        found.append(kind)
    return tuple(found)


WORD_SOURCES.append(plugin_kinds)
