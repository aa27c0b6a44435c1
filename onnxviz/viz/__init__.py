"""Rendering: map normalization, colormaps, overlays, labelled grids, HTML pages."""

from .grid import grid
from .maps import normalize_maps, to_maps
from .overlay import colorize, outline, overlay

__all__ = ["colorize", "grid", "normalize_maps", "outline", "overlay", "to_maps"]
