"""Targets: what a user asks to explain (`Target`), resolved once on the clean input into a `Score` (a scalar
per row from named model tensors) by a target kind. `spec` parses, `kinds` resolves, `scores` computes,
`regions` handles segmentation regions."""

from .kinds import KINDS, ClassKind, Resolved, TargetKind, resolve
from .regions import photo_to_output, region_boxes, region_masks
from .scores import ClassScore, Score, pick, softmax
from .spec import Target, check_finite, check_range, parse_targets

__all__ = [
    "KINDS", "ClassKind", "ClassScore", "Resolved", "Score", "Target", "TargetKind", "check_finite", "check_range",
    "parse_targets", "photo_to_output", "pick", "region_boxes", "region_masks", "resolve", "softmax",
]
