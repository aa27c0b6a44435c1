"""The layer table (tensor name, producing node, op type, shape) and layer-name resolution."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .errors import LayerError, suggest
from .layout import NCHW, Layout, TokenLayout
from .layout import layout as layout_of
from .tensor_layout import infer, override, token_split

if TYPE_CHECKING:  # onnx takes 0.6 s to import; listing methods must not pay it
    import onnx

# Ops whose output keeps the memory layout of their first input (used to tell NHWC tensors apart).
_LAYOUT_PRESERVING = {
    "Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "HardSwish", "HardSigmoid", "Elu", "Selu", "Gelu", "Mul", "Add",
    "Sub", "Div", "Identity", "Dropout", "PRelu", "Max", "Min", "Cast", "Softplus",
}
ALIASES = ("auto", "last_conv", "block:K", "token_layer:K")
SHAPE_READS = ("Shape", "Size")


@dataclass(frozen=True)
class Layer:
    name: str  # ONNX tensor name: what Netron shows on the edge
    node: str  # name of the node producing it
    op_type: str
    shape: tuple  # ints, or strings for symbolic dimensions, () when unknown
    layout: str  # "NCHW", "NHWC", "tokens:P:HxW", "ctokens:P:HxW", or "" for tensors that are not image-like

    @property
    def spatial(self) -> tuple | None:
        """(H, W) of a feature map or a token grid, None otherwise."""
        return self.axes.size(self.shape) if self.layout and len(self.shape) == self.axes.rank else None

    @property
    def tokens(self) -> bool:
        return isinstance(self.axes, TokenLayout)

    @property
    def axes(self) -> Layout:
        return layout_of(self.layout)


def dims(value_info: onnx.ValueInfoProto) -> tuple:
    """Declared shape of a tensor: ints, or names for symbolic dimensions; () when it has none."""
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return ()
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim)


def layer_table(proto: onnx.ModelProto, input_layout: str, image: tuple | None = None, batch=None,
                observed: dict[str, tuple] | None = None) -> list[Layer]:
    """Every node output in topological order, with shapes from (already run) shape inference, or `observed` on a
    run where inference left them symbolic, and layouts read from the shapes and the input `image` size (H, W);
    the ops say NCHW or NHWC where the shape cannot."""
    observed = observed or {}
    graph = proto.graph
    infos = {v.name: v for v in [*graph.input, *graph.value_info, *graph.output]}
    layouts = {i.name: input_layout for i in graph.input}
    scores: set[str] = set()  # attention scores and weights: T x T matrices, never feature maps
    outputs = {o.name for o in graph.output}
    table = []
    for k, node in enumerate(graph.node):
        for out in node.output:
            if not out:
                continue
            shape = dims(infos[out]) if out in infos else ()
            if out in observed:
                shape = _observed(shape, observed[out])
            if _attention_scores(node, shape, image, scores):
                scores.add(out)
            image_like = len(shape) == 4 or (len(shape) == 3 and out not in outputs)  # an output (N, A, K): boxes
            image_like = image_like and out not in scores
            layout = infer(shape, image, batch, _hint(node, layouts)) if image_like else ""
            layouts[out] = layout
            table.append(Layer(out, node.name or f"node_{k}", node.op_type, shape, layout))
    return table


def _attention_scores(node: onnx.NodeProto, shape: tuple, image: tuple | None, scores: set[str]) -> bool:
    """Q @ K^T and what follows it up to the Softmax: (.., T, T) with T a token count of the image. On a small image
    a T x T matrix also fits a feature map (17 x 17 for a 32 x 32 input): the ops tell them apart."""
    if len(shape) not in (3, 4) or shape[-1] != shape[-2] or not isinstance(shape[-1], int) or image is None:
        return False
    if node.op_type in ("MatMul", "Softmax"):
        return all(isinstance(d, int) for d in image) and token_split(shape[-1], image) is not None
    return node.op_type in _LAYOUT_PRESERVING and any(i in scores for i in node.input)


def _observed(declared: tuple, seen: tuple) -> tuple:
    """The shape seen at batch 1, with the declared symbolic batch put back where the ranks agree."""
    if len(declared) == len(seen) and declared and isinstance(declared[0], str) and seen[0] == 1:
        return (declared[0], *seen[1:])
    return seen


def _hint(node: onnx.NodeProto, layouts: dict[str, str]) -> str:
    """NCHW or NHWC from the op alone, for 4-D tensors whose shape fits both."""
    if node.op_type == "Transpose":
        perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
        return {(0, 2, 3, 1): "NHWC", (0, 3, 1, 2): "NCHW"}.get(tuple(perm or ()), "NCHW")
    if node.op_type in _LAYOUT_PRESERVING:
        return next((layouts[i] for i in node.input if layouts.get(i) in ("NCHW", "NHWC")), "NCHW")
    return "NCHW"


def is_spatial(layer: Layer) -> bool:
    """A feature map or token grid with H and W > 1 (or symbolic)."""
    hw = layer.spatial
    return hw is not None and bool(hw) and all((isinstance(d, int) and d > 1) or isinstance(d, str) for d in hw)


def _attention(layer: Layer) -> bool:
    """A Softmax over a T x T matrix (N, heads, T, T) or (N * heads, T, T): a transformer's attention."""
    return layer.op_type == "Softmax" and len(layer.shape) in (3, 4) and not layer.layout and \
        layer.shape[-1] == layer.shape[-2]


def attention_pairs(table: list[Layer]) -> list[tuple[Layer, Layer]]:
    """(the token tensor a block's attention reads, its Softmax attention matrix) per transformer block, in order:
    the block's input is its first LayerNormalization before the Softmax, else the last token tensor there."""
    found, start = [], 0
    for k, layer in enumerate(table):
        if not _attention(layer):
            continue
        before = [t for t in table[start:k] if is_spatial(t)]
        norms = [t for t in before if t.op_type == "LayerNormalization"]
        if norms or before:
            found.append((norms[-1] if norms else before[-1], layer))
        start = k + 1
    return found


def blocks(table: list[Layer]) -> list[Layer]:
    """One layer per transformer block, in order: the token tensor its attention reads."""
    return [block for block, _ in attention_pairs(table)]


def default_cam_layer(table: list[Layer], proto: onnx.ModelProto | None = None) -> Layer | None:
    """The last feature map or token grid with H and W > 1: the input of the classifier head. When that is a token
    tensor with prefix tokens (a class token read by the head), its patch tokens get no gradient after the last
    attention: the last block's attention input instead (pytorch-grad-cam's `blocks[-1].norm1`). A head with
    several branches (a detector's per-scale convolutions) gets the last map that feeds all of them (given `proto`)."""
    candidates = [layer for layer in table if is_spatial(layer)]
    if not candidates:
        return None
    covering = _covering(proto, candidates) if proto is not None else None
    if covering is not None:
        return covering
    last = candidates[-1]
    if isinstance(last.axes, TokenLayout) and last.axes.prefix:
        found = blocks(table)
        if found:
            return found[-1]
    return last


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


def _indexed(name: str, layers: list[Layer], what: str) -> Layer:
    """`block:-1` style aliases over a list of layers."""
    index = name.rpartition(":")[2]
    try:
        k = int(index)
    except ValueError:
        raise LayerError(f"the alias {name!r} needs an integer index, e.g. {name.partition(':')[0]}:-1") from None
    if not layers:
        raise LayerError(f"the alias {name!r} names no layer: the graph has no {what}")
    if not -len(layers) <= k < len(layers):
        raise LayerError(f"the alias {name!r} is out of range: the graph has {len(layers)} {what}")
    return layers[k]


def _covering(proto: onnx.ModelProto, spatial: list[Layer]) -> Layer | None:
    """When the maps end in several branches (maps from which only non-map tensors lead to the outputs: a detector's
    per-scale heads), the last map from which every branch can be reached; None with one branch or none covering
    them all. Shape reads do not count as branches."""
    names = {layer.name for layer in spatial}
    nodes = list(proto.graph.node)
    consumers: dict[str, list[int]] = {}
    for k, node in enumerate(nodes):
        for name in node.input:
            consumers.setdefault(name, []).append(k)
    tail = {o.name for o in proto.graph.output} - names  # non-map tensors that lead to an output through non-maps
    for node in reversed(nodes):
        if any(out in tail for out in node.output):
            tail.update(i for i in node.input if i and i not in names)
    ends = [layer.name for layer in spatial if any(
        nodes[k].op_type not in SHAPE_READS and set(nodes[k].output) & tail for k in consumers.get(layer.name, []))]
    if len(ends) < 2:
        return None
    bit = {name: 1 << k for k, name in enumerate(ends)}
    reach: dict[str, int] = {}  # tensor -> the ends it leads to
    for node in reversed(nodes):
        for out in node.output:
            below = bit.get(out, 0)
            for k in consumers.get(out, []):
                if nodes[k].op_type in SHAPE_READS:  # a shape carries no values: no branch is reached through it
                    continue
                for after in nodes[k].output:
                    below |= reach.get(after, 0)
            reach[out] = below
    every = (1 << len(ends)) - 1
    found = [layer for layer in spatial if reach.get(layer.name, 0) == every]
    return found[-1] if found else None


def resolve_layer(table: list[Layer], name: str, model_name: str = "MODEL", image: tuple | None = None,
                  default: Layer | None = None) -> Layer:
    """A tensor name, a node name, or an alias: "auto" (the default CAM layer), "last_conv", "block:K" (the
    attention input of the K-th transformer block), "token_layer:K" (the K-th token tensor), or OPTYPE:K such as
    "conv:-2" (the second-to-last Conv). `NAME@LAYOUT` reads the layer in that layout (`@nhwc`, `@tokens:1`)."""
    by_tensor = {layer.name: layer for layer in table}
    if name not in by_tensor and "@" in name:
        base, _, spec = name.rpartition("@")
        layer = resolve_layer(table, base, model_name, image)
        return replace(layer, layout=override(spec, layer.shape, image).name)
    if name in by_tensor:
        return by_tensor[name]
    for layer in table:
        if layer.node == name:
            return layer
    if name.startswith("block:"):
        return _indexed(name, blocks(table), "transformer blocks (Softmax attention)")
    if name.startswith("token_layer:"):
        return _indexed(name, [layer for layer in table if layer.tokens], "token tensors")
    found = _by_op(table, name) if ":" in name else None
    if found is not None:
        return found
    if name == "auto":
        found = default or default_cam_layer(table)
    elif name == "last_conv":
        found = next((layer for layer in reversed(table) if layer.op_type == "Conv"), None)
    else:
        choices = [*by_tensor, *(layer.node for layer in table)]
        raise LayerError(
            f"no layer named {name!r} in this graph.{suggest(name, choices)} "
            f"Run `onnxviz layers {model_name}` to list tensor names."
        )
    if found is None:
        raise LayerError(f"this graph has no layer for the alias {name!r} (no feature map or token grid / no Conv)")
    return found


def map_layout(layer: Layer, shape: tuple | None = None) -> Layout:
    """The layout of a feature map or token grid, checked before any work on the declared shape and again on the
    `shape` the tensor turned out to have; anything else is refused with how to name its layout or pick another.
    A layer whose shape inference could not tell is read as NCHW once it is 4-D."""
    shape = tuple(layer.shape if shape is None else shape)
    if layer.layout and len(shape) in (0, layer.axes.rank):
        return layer.axes
    if not layer.shape and len(shape) in (0, 4):
        return NCHW
    hint = "@tokens:1 (or @ctokens:0" if len(shape) == 3 else "@nchw (or @nhwc"
    raise LayerError(f"layer {layer.name} has shape {list(shape)}, which is no feature map (N, C, H, W / N, H, W, C) "
                     f"or token grid (N, T, C): layer methods need one. Name its layout as --layer "
                     f"'{layer.name}{hint}), or choose a layer from `onnxviz layers --spatial`")
