"""The layer table (tensor name, producing node, op type, shape) and layer-name resolution."""

from __future__ import annotations

from dataclasses import dataclass

import onnx

from .errors import LayerError, suggest
from .layout import Layout
from .layout import layout as layout_of

# Ops whose output keeps the memory layout of their first input (used to tell NHWC tensors apart).
_LAYOUT_PRESERVING = {
    "Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "HardSwish", "HardSigmoid", "Elu", "Selu", "Gelu", "Mul", "Add",
    "Sub", "Div", "Identity", "Dropout", "PRelu", "Max", "Min", "Cast", "Softplus",
}
ALIASES = ("auto", "last_conv")


@dataclass(frozen=True)
class Layer:
    name: str  # ONNX tensor name: what Netron shows on the edge
    node: str  # name of the node producing it
    op_type: str
    shape: tuple  # ints, or strings for symbolic dimensions, () when unknown
    layout: str  # "NCHW", "NHWC" or "" for non 4-D tensors

    @property
    def spatial(self) -> tuple | None:
        """(H, W) of a 4-D tensor, None otherwise."""
        return self.axes.size(self.shape) if len(self.shape) == 4 else None

    @property
    def axes(self) -> Layout:
        return layout_of(self.layout)


def dims(value_info: onnx.ValueInfoProto) -> tuple:
    """Declared shape of a tensor: ints, or names for symbolic dimensions; () when it has none."""
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return ()
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim)


def layer_table(proto: onnx.ModelProto, input_layout: str) -> list[Layer]:
    """Every node output in topological order, with shapes from (already run) shape inference."""
    graph = proto.graph
    infos = {v.name: v for v in [*graph.input, *graph.value_info, *graph.output]}
    layouts = {i.name: input_layout for i in graph.input}
    table = []
    for k, node in enumerate(graph.node):
        for out in node.output:
            if not out:
                continue
            shape = dims(infos[out]) if out in infos else ()
            layout = ""
            if len(shape) == 4:
                perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
                if node.op_type == "Transpose":
                    layout = {(0, 2, 3, 1): "NHWC", (0, 3, 1, 2): "NCHW"}.get(tuple(perm or ()), "NCHW")
                elif node.op_type in _LAYOUT_PRESERVING:
                    layout = next((layouts[i] for i in node.input if layouts.get(i)), "NCHW")
                else:
                    layout = "NCHW"
            layouts[out] = layout
            table.append(Layer(out, node.name or f"node_{k}", node.op_type, shape, layout))
    return table


def default_cam_layer(table: list[Layer]) -> Layer | None:
    """The last layer whose output is 4-D with H and W > 1: the input of the classifier head."""
    def is_spatial(layer: Layer) -> bool:
        hw = layer.spatial
        return hw is not None and bool(hw) and all((isinstance(d, int) and d > 1) or isinstance(d, str) for d in hw)

    candidates = [layer for layer in table if is_spatial(layer)]
    return candidates[-1] if candidates else None


def _by_op(table: list[Layer], name: str) -> Layer | None:
    """`conv:-2` style aliases: the k-th layer (Python indexing) of an op type."""
    op, _, index = name.rpartition(":")
    try:
        k = int(index)
    except ValueError:
        return None
    matches = [layer for layer in table if layer.op_type.lower() == op.lower()]
    if not matches:
        raise LayerError(f"the alias {name!r} names no layer: the graph has no {op} node")
    if not -len(matches) <= k < len(matches):
        op_type = matches[0].op_type
        raise LayerError(f"the alias {name!r} is out of range: the graph has {len(matches)} {op_type} layers")
    return matches[k]


def resolve_layer(table: list[Layer], name: str, model_name: str = "MODEL") -> Layer:
    """A tensor name, a node name, or an alias: "auto" (the default CAM layer), "last_conv", or
    OPTYPE:K such as "conv:-2" (the second-to-last Conv)."""
    by_tensor = {layer.name: layer for layer in table}
    if name in by_tensor:
        return by_tensor[name]
    for layer in table:
        if layer.node == name:
            return layer
    found = _by_op(table, name) if ":" in name else None
    if found is not None:
        return found
    if name == "auto":
        found = default_cam_layer(table)
    elif name == "last_conv":
        found = next((layer for layer in reversed(table) if layer.op_type == "Conv"), None)
    else:
        choices = [*by_tensor, *(layer.node for layer in table)]
        raise LayerError(
            f"no layer named {name!r} in this graph.{suggest(name, choices)} "
            f"Run `onnxviz layers {model_name}` to list tensor names."
        )
    if found is None:
        raise LayerError(f"this graph has no layer for the alias {name!r} (no 4-D spatial tensor / no Conv)")
    return found
