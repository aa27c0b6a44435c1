"""Rendering: map normalization, colormaps, overlays, labelled grids, HTML pages."""

from .grid import grid
from .maps import normalize_maps, to_maps
from .overlay import colorize, overlay

__all__ = ["colorize", "grid", "normalize_maps", "overlay", "to_maps"]
