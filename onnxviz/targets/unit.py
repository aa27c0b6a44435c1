"""`unit:LAYER:C` (the mean of channel C over the map), `unit:LAYER:C:max` (its strongest position) and
`unit:LAYER:C:Y:X` (one neuron): a unit inside the network as the target, in the layer's own layout (NCHW, NHWC or
transformer tokens folded to their grid). This is what Captum's neuron methods explain."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import TargetError
from ..layout import NONE, Layout
from .base import Model, Resolved, TargetKind
from .scores import Score, Tensor
from .spec import Target, split_unit


@dataclass(frozen=True, eq=False)
class UnitScore(Score):
    """Channel `channel` of the layer (`axes` its layout): its mean, its max, or its value at `position`."""

    axes: Layout
    channel: int
    reduce: str = "mean"  # "mean", "max" or "at"
    position: tuple[int, int] = (0, 0)

    def __call__(self, outputs: Sequence[Tensor], rows: np.ndarray) -> Tensor:
        out = outputs[0]
        if out.ndim == 2:  # (N, C): one neuron per channel
            return out[:, self.channel]
        plane = self.axes.to_channels_first(out)[:, self.channel]
        if self.reduce == "at":
            return plane[:, self.position[0], self.position[1]]
        flat = plane.reshape(plane.shape[0], -1)
        if self.reduce == "mean":
            return flat.mean(axis=1)
        return flat.max(axis=1) if isinstance(flat, np.ndarray) else flat.amax(dim=1)

    def rows(self, rows: np.ndarray) -> UnitScore:
        return self


class UnitKind(TargetKind):
    name = "unit"
    words = ("unit",)

    def resolve(self, model: Model, target: Target, x: np.ndarray, indices: np.ndarray | None,
                photos: list[tuple[int, int]] | None, batch_size: int) -> Resolved:
        name, rest = split_unit(target.value or "")
        layer = model.layer(name)
        (clean,) = model.run(x[:1], (layer.name,), batch_size)
        channel = int(rest[0])
        if clean.ndim == 2:
            axes, channels, grid = NONE, clean.shape[1], None
            if len(rest) > 1:
                raise TargetError(f"layer {layer.name} has shape {list(clean.shape)}: one value per channel, so "
                                  f"unit:{name}:{channel} names it (no :max or :Y:X)")
        else:
            if not layer.layout or len(clean.shape) != layer.axes.rank:
                raise TargetError(f"layer {layer.name} has shape {list(clean.shape)}, which is no feature map or "
                                  "token grid; name its layout as unit:NAME@nchw:C (or @nhwc, @tokens:1)")
            axes = layer.axes
            folded = axes.to_channels_first(clean)
            channels, grid = folded.shape[1], folded.shape[2:]
        if not 0 <= channel < channels:
            raise TargetError(f"channel {channel} is out of range: layer {layer.name} has {channels} channels "
                              f"(0..{channels - 1})")
        reduce, position = "mean", (0, 0)
        if len(rest) == 2:
            reduce = "max"
        elif len(rest) == 3 and grid is not None:
            reduce, position = "at", (int(rest[1]), int(rest[2]))
            if not (0 <= position[0] < grid[0] and 0 <= position[1] < grid[1]):
                raise TargetError(f"position {position[0]},{position[1]} is outside layer {layer.name}'s "
                                  f"{grid[0]} x {grid[1]} grid (rows 0..{grid[0] - 1}, columns 0..{grid[1] - 1})")
        score = UnitScore((layer.name,), axes, channel, reduce, position)
        (acts,) = model.run(x, (layer.name,), batch_size)
        scores = np.asarray(score([acts], np.arange(len(x))), np.float32)
        what = {"mean": "mean of", "max": "strongest position of", "at": f"position {position} of"}[reduce]
        labels = [f"{what} channel {channel} of {layer.name}: {s:.4g}" for s in scores]
        return Resolved(score, scores, np.full(len(x), channel), acts, np.full(len(x), channel), labels)
