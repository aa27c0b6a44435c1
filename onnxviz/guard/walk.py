"""Every graph and every tensor a model carries: the main graph, If / Loop / Scan bodies at any depth, local
functions, initializers, sparse tensors and tensor-valued attributes (Constant's value and the rest)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import onnx

A = onnx.AttributeProto


@dataclass
class Body:
    """One list of nodes with the names it can read: a graph, a subgraph or a local function."""

    nodes: list
    inputs: list[str]
    outputs: list[str]
    where: str  # "the graph", "subgraph 'then_branch' of node 'If_3'", "function 'f'"
    depth: int
    graph: onnx.GraphProto | None = None


def _subgraphs(node: onnx.NodeProto) -> Iterator[tuple[str, onnx.GraphProto]]:
    for attr in node.attribute:
        if attr.type == A.GRAPH:
            yield attr.name, attr.g
        elif attr.type == A.GRAPHS:
            yield from ((attr.name, g) for g in attr.graphs)


def _graph_bodies(graph: onnx.GraphProto, where: str, depth: int, max_depth: int) -> Iterator[Body]:
    own = [i.name for i in graph.input] + [i.name for i in graph.initializer]
    own += [s.values.name for s in graph.sparse_initializer]
    yield Body(list(graph.node), own, [o.name for o in graph.output], where, depth, graph)
    if depth >= max_depth:
        return
    for node in graph.node:
        for attr_name, sub in _subgraphs(node):
            yield from _graph_bodies(sub, f"subgraph {attr_name!r} of node {node.name or node.op_type!r}", depth + 1,
                                     max_depth)


def bodies(proto: onnx.ModelProto, max_depth: int) -> Iterator[Body]:
    """Graphs and functions down to `max_depth` + 1 levels (so the caller can see one level too deep)."""
    yield from _graph_bodies(proto.graph, "the graph", 0, max_depth + 1)
    for fn in proto.functions:
        yield Body(list(fn.node), list(fn.input), list(fn.output), f"function {fn.name!r}", 0)
        for node in fn.node:
            for attr_name, sub in _subgraphs(node):
                yield from _graph_bodies(sub, f"subgraph {attr_name!r} in function {fn.name!r}", 1, max_depth + 1)


def tensors(body: Body) -> Iterator[tuple[onnx.TensorProto, str, bool]]:
    """(tensor, where, sparse dense size) for every tensor stored in one body; the flag marks a sparse tensor's
    values, whose dense shape is what a runtime will allocate."""
    if body.graph is not None:
        for t in body.graph.initializer:
            yield t, f"initializer {t.name!r} in {body.where}", False
        for s in body.graph.sparse_initializer:
            yield from _sparse(s, f"sparse initializer {s.values.name!r} in {body.where}")
    for node in body.nodes:
        label = f"attribute of node {node.name or node.op_type!r} in {body.where}"
        for attr in node.attribute:
            if attr.type == A.TENSOR:
                yield attr.t, f"{attr.name} {label}", False
            elif attr.type == A.TENSORS:
                yield from ((t, f"{attr.name} {label}", False) for t in attr.tensors)
            elif attr.type == A.SPARSE_TENSOR:
                yield from _sparse(attr.sparse_tensor, f"{attr.name} {label}")
            elif attr.type == A.SPARSE_TENSORS:
                for s in attr.sparse_tensors:
                    yield from _sparse(s, f"{attr.name} {label}")


def _sparse(s: onnx.SparseTensorProto, where: str) -> Iterator[tuple[onnx.TensorProto, str, bool]]:
    dense = onnx.TensorProto(data_type=s.values.data_type, dims=list(s.dims), name=s.values.name)
    yield dense, f"{where} (dense shape)", True
    yield s.values, f"{where} (values)", False
    yield s.indices, f"{where} (indices)", False
