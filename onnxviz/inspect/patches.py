"""Top-k patches per filter (Zeiler & Fergus 2014, https://arxiv.org/abs/1311.2901): over a folder, each
channel's k strongest responses (one per image: its spatial maximum) and the input patch its receptive field
covers. The folder streams in batches; only k candidates per channel are kept (heaps)."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import OptionError
from ..model import Model
from ..viz.grid import grid
from .features import channels_first
from .folders import batches
from .receptive import Field, receptive_fields


def parse_channels(text: str | None) -> list[int] | None:
    """Channel indices from "0,3,8-15" (ranges inclusive); None when empty (the default channels)."""
    if not text:
        return None
    out: list[int] = []
    try:
        for part in text.split(","):
            first, _, last = part.partition("-")
            out += list(range(int(first), int(last or first) + 1))
    except ValueError:
        raise OptionError("--channels takes indices and ranges: 0,3,8-15") from None
    return out


@dataclass
class Hit:
    value: float
    image: int  # index into the folder's paths
    y: int
    x: int
    patch: np.ndarray = field(repr=False)  # RGB [0, 1], the receptive field's box


def crop(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The box (top, left, bottom, right) of an HWC image, padded with grey where it leaves the image."""
    top, left, bottom, right = box
    h, w = image.shape[:2]
    out = np.full((bottom - top, right - left, image.shape[2]), 0.5, np.float32)
    ys, xs = slice(max(top, 0), min(bottom, h)), slice(max(left, 0), min(right, w))
    out[ys.start - top : ys.stop - top, xs.start - left : xs.stop - left] = image[ys, xs]
    return out


def top_patches(model: Model, paths: list[Path], layer: str | None, channels: list[int] | None = None, k: int = 9,
                batch_size: int = 32, progress: bool = True) -> tuple[dict[int, list[Hit]], Field, str]:
    """({channel: hits, strongest first}, the layer's receptive field, the layer name)."""
    name = model.layer(layer).name
    rf = receptive_fields(model.proto).get(name)
    if rf is None:
        raise OptionError(f"{name} does not depend on the input image")
    heaps: dict[int, list] = {}
    for start, x, (acts,) in batches(model, paths, (name,), batch_size, progress, "top-patches"):
        acts = channels_first(model, name, acts)
        chosen = channels if channels is not None else list(range(min(acts.shape[1], 16)))
        if max(chosen) >= acts.shape[1] or min(chosen) < 0:
            raise OptionError(f"{name} has {acts.shape[1]} channels (0..{acts.shape[1] - 1})")
        images = model.preprocessing.invert(x)
        flat = acts[:, chosen].reshape(len(acts), len(chosen), -1)
        where = flat.argmax(axis=2)
        for j, c in enumerate(chosen):
            heap = heaps.setdefault(c, [])
            for i in range(len(acts)):
                y, xx = divmod(int(where[i, j]), acts.shape[3])
                value = float(flat[i, j, where[i, j]])
                item = (value, -(start + i), y, xx)  # ties: the earlier image wins
                if len(heap) < k:
                    heapq.heappush(heap, (*item, _patch(images[i], rf, y, xx)))
                elif item > heap[0][:4]:
                    heapq.heapreplace(heap, (*item, _patch(images[i], rf, y, xx)))
    hits = {c: [Hit(v, -i, y, x, p) for v, i, y, x, p in sorted(h, key=lambda t: t[:4], reverse=True)]
            for c, h in heaps.items()}
    return hits, rf, name


def _patch(image: np.ndarray, rf: Field, y: int, x: int) -> np.ndarray:
    if rf.whole:
        return image
    return crop(image, rf.box(y, x))


def patch_grid(hits: dict[int, list[Hit]], paths: list[Path], cell: int = 64,
               projections: dict[int, list[np.ndarray]] | None = None, method: str = "") -> np.ndarray:
    """One row per channel: its patches, each followed by its projection when `projections` are given."""
    rows, captions = [], []
    for c, found in hits.items():
        row, caps = [], []
        for k, h in enumerate(found):
            row.append(h.patch)
            caps.append(f"ch {c}: {h.value:.3g} {paths[h.image].name}"[:28])
            if projections is not None:
                row.append(projections[c][k])
                caps.append(method)
        rows.append(row)
        captions.append(caps)
    return grid(rows, captions, cell=cell, pad=2)
