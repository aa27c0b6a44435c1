"""Inspection without torch: kernels, feature maps, embeddings, top-k patches, receptive fields, a summary."""

from .embed import embed
from .features import feature_maps
from .kernels import kernel_grid, weight_stats
from .patches import top_patches
from .receptive import receptive_fields
from .summary import summarize, totals

__all__ = ["embed", "feature_maps", "kernel_grid", "receptive_fields", "summarize", "top_patches", "totals",
           "weight_stats"]
