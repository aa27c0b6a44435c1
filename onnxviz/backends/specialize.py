"""Graphs specialized for the torch backend: an `If` whose condition depends only on shapes (torchvision detection
exports branch on whether a tensor is empty, on image sizes) is replaced by the branch it takes, inlined; onnx2torch
has no converter for If. A condition that depends on the input's values stays, and the conversion says so."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx

SHAPE_ONLY = {"Shape", "Size"}


def value_dependent(proto: onnx.ModelProto) -> set[str]:
    """Tensors whose values depend on the graph input's values (not only on its shape)."""
    inits = {i.name for i in proto.graph.initializer}
    found = {i.name for i in proto.graph.input if i.name not in inits}
    for node in proto.graph.node:
        if node.op_type not in SHAPE_ONLY and any(i in found for i in node.input):
            found.update(o for o in node.output if o)
        elif node.op_type == "If" and any(_reads(g, found) for g in _branches(node)):
            found.update(o for o in node.output if o)
    return found


def _branches(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    return [a.g for a in node.attribute if a.type == onnx.AttributeProto.GRAPH]


def _reads(graph: onnx.GraphProto, names: set[str]) -> bool:
    """Whether a subgraph reads any of `names` from the scope around it."""
    return any(i in names for n in graph.node for i in n.input) or any(_reads(g, names) for n in graph.node
                                                                       for g in _branches(n))


def shape_ifs(proto: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The top-level If nodes whose condition is a function of shapes only."""
    dependent = value_dependent(proto)
    return [n for n in proto.graph.node if n.op_type == "If" and n.input[0] not in dependent]


def inline_ifs(proto: onnx.ModelProto, evaluate: Callable[[tuple[str, ...]], list[np.ndarray]]) -> onnx.ModelProto:
    """The graph with every shape-only If replaced by its taken branch (conditions read by `evaluate`, which runs
    the graph on a probe and returns the named tensors); the proto itself when there is none."""
    ifs = shape_ifs(proto)
    if not ifs:
        return proto
    taken = dict(zip((n.input[0] for n in ifs), evaluate(tuple(n.input[0] for n in ifs)), strict=True))
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    nodes = []
    for k, node in enumerate(copy.graph.node):
        if node.op_type != "If" or node.input[0] not in taken:
            nodes.append(node)
            continue
        branch = next(a.g for a in node.attribute if a.name == ("then_branch" if bool(taken[node.input[0]])
                                                                   else "else_branch"))
        prefix = f"{node.name or 'if'}_{k}/"
        rename = inner_names(branch, prefix)
        nodes.extend(inline(branch, prefix, rename, copy.graph))
        for out, result in zip(node.output, branch.output, strict=True):
            nodes.append(onnx.helper.make_node("Identity", [rename.get(result.name, result.name)], [out],
                                               name=f"{prefix}{out}"))
    del copy.graph.node[:]
    copy.graph.node.extend(nodes)
    return copy


def inner_names(body: onnx.GraphProto, prefix: str) -> dict[str, str]:
    """The names a subgraph defines (its nodes' outputs, its initializers), each under `prefix`."""
    inner = {o for n in body.node for o in n.output if o} | {i.name for i in body.initializer}
    return {name: prefix + name for name in inner}


def inline(body: onnx.GraphProto, prefix: str, rename: dict[str, str], graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """A subgraph's nodes renamed by `rename` (names it reads from around it stay), its initializers moved into
    `graph`: what to put where the node that held it was."""
    for init in body.initializer:
        moved = onnx.TensorProto()
        moved.CopyFrom(init)
        moved.name = rename[init.name]
        graph.initializer.append(moved)
    nodes = []
    for inner_node in body.node:
        moved_node = onnx.NodeProto()
        moved_node.CopyFrom(inner_node)
        moved_node.name = prefix + (inner_node.name or inner_node.op_type)
        moved_node.input[:] = [rename.get(i, i) for i in inner_node.input]
        moved_node.output[:] = [rename.get(o, o) for o in inner_node.output]
        nodes.append(moved_node)
    return nodes
