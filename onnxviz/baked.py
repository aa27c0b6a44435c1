"""Preprocessing baked into a graph: a block at its start that scales and normalizes the input itself (Cast, Div or
Mul by a constant, Sub or Add of per-channel constants, a Transpose between). Such a graph wants raw pixels — 0..255,
or 0..1 — and onnxviz must not normalize them again."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from .backends.constants import constants

AFFINE = ("Div", "Mul", "Sub", "Add")
PASS = ("Cast", "Transpose", "Identity")


@dataclass(frozen=True)
class Block:
    """y = scale * x + shift per channel (length 1 or C), over the ops `ops`, and the pixel range it expects."""

    scale: np.ndarray
    shift: np.ndarray
    ops: tuple[str, ...]
    pixels: float  # 255.0 (raw 0..255) or 1.0 (0..1)

    @property
    def fields(self) -> dict:
        """Preprocessing fields that feed it raw pixels."""
        return {"mean": (0.0,), "std": (1.0,), "scale": self.pixels}

    def describe(self) -> str:
        top = "0..255" if self.pixels == 255 else "0..1"
        return f"the graph normalizes its input itself ({', '.join(self.ops)} at its start): fed raw pixels {top}"


def detect(proto: onnx.ModelProto, input_name: str, channels: int) -> Block | None:
    """The normalization block at the start of the graph, or None (no block, or one that is no pixel scaling)."""
    graph = proto.graph
    consts = constants(graph)
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    scale, shift, ops, tensor = np.ones(1), np.zeros(1), [], input_name
    while len(consumers.get(tensor, [])) == 1:
        node = consumers[tensor][0]
        if node.op_type in PASS:
            tensor = node.output[0]
            continue
        other = [i for i in node.input if i != tensor]
        divides_it = node.op_type not in ("Div", "Sub") or node.input[0] == tensor  # x / c, not c / x
        if node.op_type not in AFFINE or len(other) != 1 or other[0] not in consts or not divides_it:
            break
        value = np.asarray(consts[other[0]], np.float64).ravel()
        if value.size not in (1, channels) or (node.op_type == "Div" and not np.all(value != 0)):
            break
        if node.op_type == "Div":
            scale, shift = scale / value, shift / value
        elif node.op_type == "Mul":
            scale, shift = scale * value, shift * value
        elif node.op_type == "Sub":
            shift = shift - value
        else:
            shift = shift + value
        ops.append(node.op_type)
        tensor = node.output[0]
    if not ops or (np.allclose(scale, 1) and np.allclose(shift, 0)):
        return None
    for pixels in (255.0, 1.0):  # the range whose image the block maps onto a normalized span
        low, high = shift, scale * pixels + shift
        span = float(np.max(np.abs(high - low)))
        if 0.5 <= span <= 12 and float(np.max(np.abs((high + low) / 2))) < 6:
            return Block(scale, shift, tuple(ops), pixels)
    return None
