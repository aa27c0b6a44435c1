"""Comparing models and judging explanations."""

from .agreement import spearman, ssim, top_iou
from .compare import Comparison, Pair, compare

__all__ = ["Comparison", "Pair", "compare", "spearman", "ssim", "top_iou"]
