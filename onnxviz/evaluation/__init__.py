"""Comparing models and judging explanations: `evaluate` (faithfulness and sanity of methods), `compare` (models
on the same images), and the agreement measures they share."""

from .agreement import spearman, ssim, top_iou
from .compare import Comparison, Pair, compare
from .run import Evaluation, evaluate

__all__ = ["Comparison", "Evaluation", "Pair", "compare", "evaluate", "spearman", "ssim", "top_iou"]
