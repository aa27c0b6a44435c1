"""Receptive fields from the graph: for every tensor, the input region one of its positions sees.

Per spatial axis a tensor carries (size, jump, start): a position i sees input pixels
[start + i * jump - (size - 1) / 2, start + i * jump + (size - 1) / 2]. A window op with kernel k, stride s,
dilation d and leading pad p maps (r, j, a) to (r + (d (k - 1)) j, j s, a + ((d (k - 1)) / 2 - p) j)
(Araujo, Norris & Sim 2019, https://distill.pub/2019/computing-receptive-fields/). Ops that mix positions
globally (global pooling, Flatten, Gemm) see the whole input.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx
from onnx import helper

WINDOW_OPS = {"Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool"}
GLOBAL_OPS = {"GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool", "Flatten", "Gemm", "MatMul", "ReduceMean",
              "ReduceMax", "ReduceSum", "Reshape"}


@dataclass(frozen=True)
class Field:
    """Receptive field along (height, width); `whole` when every input pixel reaches the tensor."""

    size: tuple[float, float]
    jump: tuple[float, float]
    start: tuple[float, float]
    whole: bool = False

    def box(self, y: int, x: int) -> tuple[int, int, int, int]:
        """(top, left, bottom, right), end-exclusive, of the input pixels position (y, x) sees (unclipped)."""
        cy, cx = self.start[0] + y * self.jump[0], self.start[1] + x * self.jump[1]
        hy, hx = (self.size[0] - 1) / 2, (self.size[1] - 1) / 2
        return round(cy - hy), round(cx - hx), round(cy + hy) + 1, round(cx + hx) + 1

    def __str__(self) -> str:
        if self.whole:
            return "whole input"
        return f"{self.size[0]:g}x{self.size[1]:g} px, stride {self.jump[0]:g}x{self.jump[1]:g}"


PIXEL = Field((1.0, 1.0), (1.0, 1.0), (0.0, 0.0))


def _window(node: onnx.NodeProto, weight_shapes: dict[str, tuple]) -> tuple[list[int], list[int], list[int], list[int]]:
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    kernel = list(attrs.get("kernel_shape", []))
    if not kernel and node.op_type in ("Conv", "ConvTranspose") and len(node.input) > 1:
        kernel = list(weight_shapes.get(node.input[1], ())[2:])
    kernel = (kernel or [1, 1])[-2:]
    strides = list(attrs.get("strides", [1, 1]))[-2:]
    dilations = list(attrs.get("dilations", [1, 1]))[-2:]
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    begin = pads[: len(pads) // 2][-2:] if pads else [0, 0]
    if attrs.get("auto_pad", b"NOTSET") in (b"SAME_UPPER", b"SAME_LOWER"):  # onnx gives string attributes as bytes
        begin = [(d * (k - 1)) // 2 for k, d in zip(kernel, dilations, strict=True)]
    return kernel, strides, dilations, begin


def receptive_fields(proto: onnx.ModelProto) -> dict[str, Field]:
    """Field of every tensor reachable from the graph input (others are absent)."""
    graph = proto.graph
    inits = {i.name for i in graph.initializer}
    weight_shapes = {i.name: tuple(i.dims) for i in graph.initializer}
    fields: dict[str, Field] = {i.name: PIXEL for i in graph.input if i.name not in inits}
    for node in graph.node:
        ins = [fields[i] for i in node.input if i in fields]
        if not ins:
            continue
        if any(f.whole for f in ins) or node.op_type in GLOBAL_OPS:
            out = Field(ins[0].size, ins[0].jump, ins[0].start, whole=True)
        elif node.op_type in WINDOW_OPS and node.op_type != "ConvTranspose":
            f = ins[0]
            kernel, strides, dilations, begin = _window(node, weight_shapes)
            grow = [d * (k - 1) for k, d in zip(kernel, dilations, strict=True)]
            out = Field((f.size[0] + grow[0] * f.jump[0], f.size[1] + grow[1] * f.jump[1]),
                        (f.jump[0] * strides[0], f.jump[1] * strides[1]),
                        (f.start[0] + (grow[0] / 2 - begin[0]) * f.jump[0],
                         f.start[1] + (grow[1] / 2 - begin[1]) * f.jump[1]))
        else:  # element-wise, normalization, concatenation, transposes: the widest input decides
            out = max(ins, key=lambda f: f.size[0] * f.size[1])
        for name in node.output:
            if name:
                fields[name] = out
    return fields
