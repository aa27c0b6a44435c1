"""Layouts: where the batch, channel and spatial axes of a tensor are. The one place that knows NCHW from NHWC and
from transformer tokens; the rest of the engine asks a `Layout` (`ctx.layout`, `Layer.axes`, `InputSpec.axes`)
instead of branching on a name."""

from __future__ import annotations

import re
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
    rank = 4  # dimensions of a tensor in this layout, batch included

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

    def from_channels_first(self, x: Array, like: Array | None = None) -> Array:
        """Back to this layout; `like` (a tensor in this layout) supplies what (N, C, H, W) cannot hold."""
        return x if self.channel_axis == 1 else _permute(x, (0, 2, 3, 1))


@dataclass(frozen=True)
class TokenLayout(Layout):
    """Transformer tokens: (N, T, C), or (N, C, T) when `channels_last` is False, where T = `prefix` tokens (class,
    distillation, registers) + the `grid` (h, w) of patch tokens in row-major order. As channels first, the prefix
    is dropped and the patches fold to (N, C, h, w): the `reshape_transform` pytorch-grad-cam users write."""

    prefix: int = 0
    grid: tuple[int, int] = (0, 0)
    channels_last: bool = True
    rank = 3

    def size(self, shape: tuple) -> tuple:
        return self.grid

    def window(self, rows: slice, cols: slice) -> tuple[slice, ...]:
        raise OptionError(f"{self.name} is a token layout: it describes a layer, not an image input")

    def over_channels(self, maps: np.ndarray) -> np.ndarray:
        raise OptionError(f"{self.name} is a token layout: it describes a layer, not an image input")

    def to_channels_first(self, x: Array) -> Array:
        patches = x[:, self.prefix:] if self.channels_last else _permute(x[:, :, self.prefix:], (0, 2, 1))
        if tuple(patches.shape[1:2]) != (self.grid[0] * self.grid[1],):
            raise OptionError(f"a tensor of shape {list(x.shape)} does not hold {self.prefix} + "
                              f"{self.grid[0]}x{self.grid[1]} tokens ({self.name})")
        folded = patches.reshape(patches.shape[0], self.grid[0], self.grid[1], patches.shape[2])
        return _permute(folded, (0, 3, 1, 2))

    def to_channels_last(self, x: Array) -> Array:
        return _permute(self.to_channels_first(x), (0, 2, 3, 1))

    def from_channels_last(self, x: Array, like: Array | None = None) -> Array:
        return self.from_channels_first(_permute(x, (0, 3, 1, 2)), like)

    def from_channels_first(self, x: Array, like: Array | None = None) -> Array:
        """Patches back to tokens; the prefix tokens come from `like` (zeros without it)."""
        n, c = x.shape[:2]
        tokens = _permute(x.reshape(n, c, -1), (0, 2, 1))  # (N, h*w, C)
        if self.prefix:
            if like is None:
                prefix = _zeros_like(tokens, self.prefix)
            elif self.channels_last:
                prefix = like[:, : self.prefix]
            else:
                prefix = _permute(like[:, :, : self.prefix], (0, 2, 1))
            tokens = _concat(_broadcast(prefix, n), tokens)
        return tokens if self.channels_last else _permute(tokens, (0, 2, 1))


def _permute(x: Array, axes: tuple[int, ...]) -> Array:
    return x.transpose(*axes) if isinstance(x, np.ndarray) else x.permute(*axes)


def _zeros_like(patches: Array, count: int) -> Array:
    shape = (patches.shape[0], count, patches.shape[2])
    if isinstance(patches, np.ndarray):
        return np.zeros(shape, patches.dtype)
    return patches.new_zeros(shape)


def _broadcast(prefix: Array, n: int) -> Array:
    if prefix.shape[0] == n:
        return prefix
    if isinstance(prefix, np.ndarray):
        return np.broadcast_to(prefix, (n, *prefix.shape[1:]))
    return prefix.expand(n, *prefix.shape[1:])


def _concat(a: Array, b: Array) -> Array:
    if isinstance(a, np.ndarray):
        return np.concatenate([a, b], axis=1)
    import torch  # only reached with torch tensors

    return torch.cat([a, b], dim=1)


NCHW = Layout("NCHW", 1, (2, 3))
NHWC = Layout("NHWC", 3, (1, 2))
NONE = Layout("", 1, (2, 3))  # not an image: falsy, and read as channels first where a shape is still asked
NAMES = {"NCHW": NCHW, "NHWC": NHWC, "": NONE}


_TOKENS = re.compile(r"^(?P<kind>c?tokens)(?::(?P<prefix>\d+))?(?::(?P<h>\d+)x(?P<w>\d+))?$")
CHOICES = "NCHW, NHWC, tokens:P (N, T, C with P prefix tokens) or ctokens:P (N, C, T), optionally :HxW"


def tokens(prefix: int, grid: tuple[int, int], channels_last: bool = True) -> TokenLayout:
    """The token layout of `prefix` leading tokens and an (h, w) patch grid; its name parses back to it."""
    kind = "tokens" if channels_last else "ctokens"
    return TokenLayout(f"{kind}:{prefix}:{grid[0]}x{grid[1]}", 2 if channels_last else 1, (1, 1) if channels_last
                       else (2, 2), prefix, grid, channels_last)


def parse_tokens(name: str) -> tuple[bool, int | None, tuple[int, int] | None] | None:
    """(channels_last, prefix, grid) of a token layout name such as `tokens:1` or `ctokens:0:7x7`; None if it is
    not one. Missing parts are None: they follow from the tensor's shape and the input size."""
    match = _TOKENS.match(name.strip().lower())
    if match is None:
        return None
    prefix = int(match["prefix"]) if match["prefix"] is not None else None
    grid = (int(match["h"]), int(match["w"])) if match["h"] else None
    return match["kind"] == "tokens", prefix, grid


def layout(name: str | Layout | None) -> Layout:
    """The Layout of a name ("NCHW", "NHWC", "tokens:P:HxW", "ctokens:P:HxW", "" for non-images)."""
    if isinstance(name, Layout):
        return name
    key = (name or "").strip()
    if key.upper() in NAMES:
        return NAMES[key.upper()]
    parsed = parse_tokens(key)
    if parsed is not None and parsed[1] is not None and parsed[2] is not None:
        return tokens(parsed[1], parsed[2], parsed[0])
    raise OptionError(f"unknown layout {name!r}; choose {CHOICES}")
