"""Every graph, function and tensor a model carries, found by walking the protobuf messages themselves rather than
the fields we know of: the main graph, If / Loop / Scan bodies at any depth, local functions and the default
values of their attributes, training_info, initializers, sparse tensors and every tensor-valued attribute."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

import onnx
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from ..errors import ModelError

_TENSOR = onnx.TensorProto.DESCRIPTOR
_SPARSE = onnx.SparseTensorProto.DESCRIPTOR
_GRAPH = onnx.GraphProto.DESCRIPTOR
_FUNCTION = onnx.FunctionProto.DESCRIPTOR
_TRAINING = onnx.TrainingInfoProto.DESCRIPTOR


@dataclass
class Body:
    """One list of nodes with the names it can read: a graph, a subgraph or a local function."""

    nodes: list
    inputs: list[str]
    outputs: list[str]
    where: str  # "the graph", "graph.node[3 'If_3'].attribute['then_branch'].g", "function 'f'"
    depth: int  # graphs around this one (the main graph and functions: 0)


@dataclass
class Found:
    """What one walk over a model saw."""

    bodies: list[Body]
    tensors: list[tuple[onnx.TensorProto, str, bool]]  # (tensor, where, stands for a sparse tensor's dense size)
    deepest: int


@cache
def _may_hold(descriptor: Descriptor) -> bool:
    """Whether messages of this type can contain a tensor or a graph, at any depth (prunes TypeProto & co.)."""
    seen: set[str] = set()
    todo = [descriptor]
    while todo:
        d = todo.pop()
        if d.full_name in seen:
            continue
        seen.add(d.full_name)
        if d in (_TENSOR, _SPARSE, _GRAPH):
            return True
        todo.extend(f.message_type for f in d.fields if f.type == FieldDescriptor.TYPE_MESSAGE)
    return False


_NAMES = {"graph": "the graph", "functions": "function", "attribute_proto": "attribute default"}
_SILENT = {"t", "g", "sparse_tensor"}  # an attribute's single value: the attribute's own label says enough


def _label(field: str, item: Message, index: int | None) -> str:
    """One step of a readable path: "node 3 'conv1' (Conv)", "attribute 'then_branch'", "the graph"."""
    if field in _SILENT:
        return ""
    if field == "graph":
        return "the graph"
    fields = item.DESCRIPTOR.fields_by_name
    name = getattr(item, "name", "") if "name" in fields else ""
    op = f"({item.op_type})" if "op_type" in fields and item.op_type else ""
    parts = [_NAMES.get(field, field), "" if index is None or name else str(index), repr(name) if name else "", op]
    return " ".join(p for p in parts if p)


def _children(msg: Message) -> Iterator[tuple[str, Message]]:
    for field in msg.DESCRIPTOR.fields:
        if field.type != FieldDescriptor.TYPE_MESSAGE or not _may_hold(field.message_type):
            continue
        if field.is_repeated:
            for i, item in enumerate(getattr(msg, field.name)):
                yield _label(field.name, item, i), item
        elif msg.HasField(field.name):
            item = getattr(msg, field.name)
            yield _label(field.name, item, None), item


def _graph_body(g: onnx.GraphProto, where: str, depth: int) -> Body:
    own = [i.name for i in g.input] + [i.name for i in g.initializer] + [s.values.name for s in g.sparse_initializer]
    return Body(list(g.node), own, [o.name for o in g.output], where, depth)


def walk(proto: onnx.ModelProto, max_depth: int) -> Found:
    """Every body and tensor, descending at most `max_depth` + 1 graph levels (so one level too deep is seen).
    A body's depth counts the scopes around it: graphs, functions and training_info."""
    found = Found([], [], 0)
    stack: list[tuple[Message, str, int]] = [(proto, "", 0)]
    while stack:
        msg, where, level = stack.pop()
        d = msg.DESCRIPTOR
        inner = level
        if d is _GRAPH:
            found.deepest = max(found.deepest, level)
            found.bodies.append(_graph_body(msg, where, level))
            if level > max_depth:
                continue
            inner = level + 1
        elif d is _FUNCTION:
            found.bodies.append(Body(list(msg.node), list(msg.input), list(msg.output), f"function {msg.name!r}",
                                     level))
            inner = level + 1
        elif d is _TRAINING:
            inner = level + 1
        elif d is _TENSOR:
            found.tensors.append((msg, where, False))
            continue
        elif d is _SPARSE:
            dense = onnx.TensorProto(data_type=msg.values.data_type, dims=list(msg.dims), name=msg.values.name)
            found.tensors.append((dense, f"{where} (dense shape)", True))
        children = [(child, " > ".join(p for p in (where, name) if p), inner) for name, child in _children(msg)]
        stack.extend(reversed(children))  # popped in document order
    return found


def external_tensors(proto: onnx.ModelProto) -> list[str]:
    """Where any tensor of the model still refers to external data, at any depth."""
    return [where for tensor, where, _ in walk(proto, max_depth=10**6).tensors if is_external(tensor)]


def ensure_self_contained(proto: onnx.ModelProto) -> None:
    """Refuse to hand a runtime a model that still names an external file: onnxruntime would open it itself,
    relative to the working folder. Every external tensor must have been inlined by our own reader."""
    left = external_tensors(proto)
    if left:
        raise ModelError(f"{left[0]} still refers to external data after validation; onnxviz refuses to let a runtime "
                         "read files on a model's behalf (please report this model)")


def is_external(tensor: onnx.TensorProto) -> bool:
    return tensor.data_location == onnx.TensorProto.EXTERNAL or bool(tensor.external_data)
