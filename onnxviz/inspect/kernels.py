"""Convolution kernels as pictures, and per-layer weight statistics (the numbers Netron shows)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import numpy_helper

from ..errors import LayerError
from ..model import Model
from ..viz.grid import grid


@dataclass(frozen=True)
class WeightStats:
    layer: str  # the Conv's output tensor
    shape: tuple
    params: int
    min: float
    max: float
    mean: float
    std: float
    sparsity: float  # share of exact zeros


def _resolve_weight(model: Model, name: str) -> np.ndarray | None:
    """An initializer by name, seen through Identity nodes (as the legacy exporter shares weights)."""
    inits = {i.name: i for i in model.proto.graph.initializer}
    producers = {o: n for n in model.proto.graph.node for o in n.output}
    while name not in inits and name in producers and producers[name].op_type == "Identity":
        name = producers[name].input[0]
    return numpy_helper.to_array(inits[name]) if name in inits else None


def conv_weights(model: Model) -> dict[str, np.ndarray]:
    """{Conv output tensor: weight (C_out, C_in / groups, kH, kW)} in graph order."""
    out = {}
    for node in model.proto.graph.node:
        if node.op_type == "Conv" and len(node.input) > 1:
            w = _resolve_weight(model, node.input[1])
            if w is not None and w.ndim == 4:
                out[node.output[0]] = w.astype(np.float32)
    return out


def weight_stats(model: Model) -> list[WeightStats]:
    rows = []
    for layer, w in conv_weights(model).items():
        rows.append(WeightStats(layer, w.shape, int(w.size), float(w.min()), float(w.max()), float(w.mean()),
                                float(w.std()), float((w == 0).mean())))
    return rows


def scale_to_unit(w: np.ndarray) -> np.ndarray:
    """Min-max over the whole array to [0, 1] (times 255 is the seed's [0, 255] picture); flat arrays give 0.5."""
    lo, hi = float(w.min()), float(w.max())
    return np.full_like(w, 0.5) if hi == lo else (w - lo) / (hi - lo)


def kernel_grid(model: Model, layer: str | None = None, mode: str = "auto", max_filters: int = 64,
                max_inputs: int = 16, cell: int = 48) -> tuple[np.ndarray, str]:
    """(picture, what it shows). mode: "rgb" (3 input channels as colour: first layers), "per-input" (one row
    per filter, one cell per input channel), "mean" (each filter averaged over its inputs), "auto"."""
    weights = conv_weights(model)
    if not weights:
        raise LayerError("the model has no Conv layers with constant weights")
    if layer is None:
        name = next(iter(weights))
    else:
        name = model.layer(layer).name
        if name not in weights:
            raise LayerError(f"{name!r} is not a Conv output with constant weights; Conv layers: "
                             f"{', '.join(list(weights)[:8])}{' ...' if len(weights) > 8 else ''}")
    w = scale_to_unit(weights[name][:max_filters])
    if mode == "auto":
        mode = "rgb" if w.shape[1] == 3 else "per-input"
    if mode == "rgb":
        if w.shape[1] != 3:
            raise LayerError(f"{name} has {w.shape[1]} input channels: rgb needs 3 (use per-input or mean)")
        tiles = list(w.transpose(0, 2, 3, 1))  # (kH, kW, RGB)
        rows = [tiles[i : i + 8] for i in range(0, len(tiles), 8)]
    elif mode == "mean":
        tiles = [np.repeat(t.mean(axis=0)[..., None], 3, axis=-1) for t in w]
        rows = [tiles[i : i + 8] for i in range(0, len(tiles), 8)]
    else:
        rows = [[np.repeat(k[..., None], 3, axis=-1) for k in f[:max_inputs]] for f in w]
    picture = grid(rows, cell=cell, pad=2, nearest=True)
    return picture, f"{name}: {weights[name].shape} weights, {mode}, scaled min..max of the layer to 0..255"
