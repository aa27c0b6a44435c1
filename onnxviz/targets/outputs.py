"""What a model output is, from its shape and the graph that makes it: class scores, a segmentation map, a raw
detector head, boxes, an embedding. Class targets are refused on outputs that are not classes, with the reason
and what to explain instead (a class index of a detector head would sum a box coordinate over every anchor)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import TargetError

if TYPE_CHECKING:  # onnx takes 0.6 s to import; listing methods must not pay it
    import onnx

NORMALIZERS = {"LpNormalization"}  # an embedding ends in one (or in x / sqrt(sum(x^2)): see _l2_normalized)
MIN_ANCHORS = 64  # a raw detector head has many candidate boxes per image (YOLO at 640 px: 8400)


@dataclass(frozen=True)
class OutputKind:
    kind: str  # "classes", "map", "sequence", "detector_head", "boxes", "embedding"
    why: str  # what in the shape or the graph said so

    @property
    def has_classes(self) -> bool:
        return self.kind in ("classes", "map", "sequence")


def _producer(proto: onnx.ModelProto, name: str) -> onnx.NodeProto | None:
    return next((n for n in proto.graph.node if name in n.output), None)


def _l2_normalized(proto: onnx.ModelProto, name: str) -> bool:
    """Whether `name` is an L2 normalization: LpNormalization, or a Div by a Sqrt / ReduceL2 of the same tensor."""
    node = _producer(proto, name)
    hops = 0
    while node is not None and node.op_type in ("Reshape", "Flatten", "Identity", "Squeeze") and hops < 4:
        node, hops = _producer(proto, node.input[0]), hops + 1
    if node is None:
        return False
    if node.op_type in NORMALIZERS:
        return True
    if node.op_type == "Div" and len(node.input) == 2:
        divisor = _producer(proto, node.input[1])
        while divisor is not None and divisor.op_type in ("Clip", "Max", "Expand", "Add"):
            divisor = _producer(proto, divisor.input[0])
        return divisor is not None and divisor.op_type in ("Sqrt", "ReduceL2")
    return False


def output_kind(proto: onnx.ModelProto, name: str, shape: tuple[Any, ...], output: str | None = None) -> OutputKind:
    """The kind of tensor `name` (scored for the graph output `output`) whose value has `shape` (a batch)."""
    lowered = (output or name).lower()
    rank = len(shape)
    if rank >= 2 and shape[-1] == 4 and any(w in lowered for w in ("box", "bbox", "det")):
        return OutputKind("boxes", f"its last axis holds 4 box coordinates and it is called {name!r}")
    if rank == 2:
        if _l2_normalized(proto, name):
            return OutputKind("embedding", "the graph L2-normalizes it (an embedding, not class scores)")
        return OutputKind("classes", "(N, classes)")
    if rank == 3:
        a, b = int(shape[1]), int(shape[2])
        if b >= MIN_ANCHORS and 5 <= a < b:
            return OutputKind("detector_head", f"(N, {a}, {b}): {a} values (4 box coordinates + scores) for each of "
                                               f"{b} candidate boxes, as YOLOv8 / v11 write it")
        if a >= MIN_ANCHORS and 5 <= b < a:
            return OutputKind("detector_head", f"(N, {a}, {b}): {a} candidate boxes of {b} values (4 box "
                                               "coordinates + objectness + class scores), as YOLOv5 / v7 / YOLOX")
        return OutputKind("sequence", f"(N, {a}, {b}): a class axis over positions")
    if rank == 4:
        return OutputKind("map" if int(shape[2]) * int(shape[3]) > 1 else "classes", "(N, classes, H, W)")
    return OutputKind("classes", f"shape {tuple(shape)}")


def check_class_target(proto: onnx.ModelProto, name: str, shape: tuple[Any, ...], output: str | None = None
                       ) -> OutputKind:
    """The output's kind; a TargetError when it holds no classes to explain, saying what it holds."""
    found = output_kind(proto, name, shape, output)
    name = output or name
    if found.has_classes:
        return found
    advice = {
        "detector_head": "a class index here would sum one box coordinate or score over every candidate box. "
                         "Explain one detection's score with a region target on a class output, use --output to "
                         "choose another output, or wait for detection targets (box:, det:)",
        "boxes": "box coordinates are not class scores; choose the scores output with --output",
        "embedding": "its dimensions are not classes; explain a similarity to a reference instead (embedding "
                     "targets), or choose a class output with --output",
    }[found.kind]
    raise TargetError(f"output {name!r} of shape {list(shape)} looks like a {found.kind.replace('_', ' ')}: "
                      f"{found.why}; {advice}")


def chosen_output(proto: onnx.ModelProto, output: str | None, what: str) -> str:
    """The tensor a target reads: the one named (a graph output, or any tensor inside: an embedding layer), or the
    only output; else a TargetError listing the outputs."""
    names = [o.name for o in proto.graph.output]
    inside = {out for node in proto.graph.node for out in node.output}
    if output is not None and output not in names and output not in inside:
        raise TargetError(f"no output or tensor named {output!r}; the model's outputs are: {', '.join(names)} "
                          "(`onnxviz layers` lists the tensors inside)")
    if output is None and len(names) > 1:
        listed = ", ".join(f"{o.name} {list(_dims(o))}" for o in proto.graph.output)
        raise TargetError(f"the model has {len(names)} outputs ({listed}); choose the {what} with --output NAME "
                          f"(or OUTPUT:... in the target)")
    return output or names[0]


def _dims(value: onnx.ValueInfoProto) -> tuple:
    t = value.type.tensor_type
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim)


def declared_shape(proto: onnx.ModelProto, name: str) -> tuple | None:
    """The shape the graph declares for a tensor (ints, or names / "?" where open), or None when it declares none."""
    for value in [*proto.graph.output, *proto.graph.value_info]:
        if value.name == name and value.type.tensor_type.HasField("shape"):
            return _dims(value)
    return None
