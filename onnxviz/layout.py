"""Layouts: where the batch, channel and spatial axes of a tensor are. The one place that knows NCHW from NHWC;
the rest of the engine asks a `Layout` (`ctx.layout`, `Layer.axes`, `InputSpec.axes`) instead of branching on a
name. A layout with a new arrangement (tokens, say) is one more subclass here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import OptionError

Array = Any  # a numpy array or a torch tensor: the layout methods take either


@dataclass(frozen=True)
class Layout:
    """A 4-D image-like arrangement: `channel_axis` and `spatial_axes` (H, W) of a batch."""

    name: str
    channel_axis: int
    spatial_axes: tuple[int, int]

    def __str__(self) -> str:
        return self.name

    def __bool__(self) -> bool:
        return bool(self.name)

    def size(self, shape: tuple) -> tuple:
        """(H, W) of a batch shape (entries may be symbolic strings)."""
        return tuple(shape[a] for a in self.spatial_axes)

    def channels(self, shape: tuple) -> Any:
        return shape[self.channel_axis] if len(shape) > self.channel_axis else None

    def window(self, rows: slice, cols: slice) -> tuple[slice, ...]:
        """Index of a spatial window of one sample (no batch axis), all channels."""
        index = [slice(None)] * 3
        index[self.spatial_axes[0] - 1], index[self.spatial_axes[1] - 1] = rows, cols
        return tuple(index)

    def over_channels(self, maps: np.ndarray) -> np.ndarray:
        """(N, H, W) maps with a unit channel axis where this layout has it (to scale a batch)."""
        return np.expand_dims(maps, self.channel_axis)

    def to_channels_last(self, x: Array) -> Array:
        """(N, ..., C) with spatial axes in order: numpy arrays and torch tensors alike."""
        return x if self.channel_axis == x.ndim - 1 else _permute(x, (0, 2, 3, 1))

    def from_channels_last(self, x: Array) -> Array:
        return x if self.channel_axis == x.ndim - 1 else _permute(x, (0, 3, 1, 2))

    def to_channels_first(self, x: Array) -> Array:
        """(N, C, H, W) of a batch in this layout."""
        return x if self.channel_axis == 1 else _permute(x, (0, 3, 1, 2))

    def from_channels_first(self, x: Array) -> Array:
        return x if self.channel_axis == 1 else _permute(x, (0, 2, 3, 1))


def _permute(x: Array, axes: tuple[int, ...]) -> Array:
    return x.transpose(*axes) if isinstance(x, np.ndarray) else x.permute(*axes)


NCHW = Layout("NCHW", 1, (2, 3))
NHWC = Layout("NHWC", 3, (1, 2))
NONE = Layout("", 1, (2, 3))  # not an image: falsy, and read as channels first where a shape is still asked
NAMES = {"NCHW": NCHW, "NHWC": NHWC, "": NONE}


def layout(name: str | Layout | None) -> Layout:
    """The Layout of a name ("NCHW", "NHWC", "" for non-images)."""
    if isinstance(name, Layout):
        return name
    try:
        return NAMES[name or ""]
    except KeyError:
        raise OptionError(f"unknown layout {name!r}; choose NCHW or NHWC") from None
