"""Loops for the torch backend: a `Loop` whose trip count depends only on shapes and that never stops early (its
condition absent or a constant true, kept true by its body) is unrolled at the probe's shape — its body inlined once
per iteration, the carried values chained, the scan outputs stacked. onnx2torch has no Loop; a loop that stops on
the input's values stays, and the conversion says so."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .constants import constants
from .specialize import inline, inner_names, value_dependent

MAX_TRIPS = 256  # a longer loop would make a graph too large to be worth unrolling


def _constant_true(name: str, consts: dict[str, np.ndarray]) -> bool:
    return name == "" or (name in consts and bool(np.all(consts[name])))


def unrollable(proto: onnx.ModelProto) -> list[onnx.NodeProto]:
    """Top-level Loops with a shape-only trip count that never stop early."""
    dependent = value_dependent(proto)
    consts = constants(proto.graph)
    found = []
    for node in proto.graph.node:
        if node.op_type != "Loop" or not node.input[0] or node.input[0] in dependent:
            continue
        body = next(a.g for a in node.attribute if a.name == "body")
        inner = constants(body)
        producer = {o: n for n in body.node for o in n.output}
        cond = body.output[0].name
        while cond in producer and producer[cond].op_type == "Identity":  # the condition passed through
            cond = producer[cond].input[0]
        keeps_going = cond == body.input[1].name or _constant_true(cond, inner)
        if _constant_true(node.input[1] if len(node.input) > 1 else "", consts) and keeps_going:
            found.append(node)
    return found


def unroll_loops(proto: onnx.ModelProto, evaluate: Callable[[tuple[str, ...]], list[np.ndarray]]
                 ) -> onnx.ModelProto:
    """The graph with every unrollable Loop replaced by its iterations (trip counts read by `evaluate`, which runs
    the graph on a probe); the proto itself when there is none."""
    loops = unrollable(proto)
    if not loops:
        return proto
    trips = {n.input[0]: int(np.asarray(v).reshape(-1)[0]) for n, v in
             zip(loops, evaluate(tuple(n.input[0] for n in loops)), strict=True)}
    if any(not 0 < t <= MAX_TRIPS for t in trips.values()):
        return proto  # an empty or a very long loop: left as it is (the conversion names it)
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 13)
    nodes: list[onnx.NodeProto] = []
    for k, node in enumerate(copy.graph.node):
        if node.op_type == "Loop" and node.input[0] in trips:
            nodes.extend(_unrolled(node, trips[node.input[0]], f"{node.name or 'loop'}_{k}", copy.graph, opset))
        else:
            nodes.append(node)
    del copy.graph.node[:]
    copy.graph.node.extend(nodes)
    return copy


def _unrolled(node: onnx.NodeProto, trips: int, name: str, graph: onnx.GraphProto, opset: int
              ) -> list[onnx.NodeProto]:
    body = next(a.g for a in node.attribute if a.name == "body")
    carried = list(node.input[2:])
    n_carried = len(carried)
    scans: list[list[str]] = [[] for _ in body.output[1 + n_carried :]]
    out: list[onnx.NodeProto] = []
    for it in range(trips):
        prefix = f"{name}/{it}/"
        rename = inner_names(body, prefix)
        counter, condition = prefix + body.input[0].name, prefix + body.input[1].name
        graph.initializer.append(numpy_helper.from_array(np.array(it, np.int64), counter))
        graph.initializer.append(numpy_helper.from_array(np.array(True), condition))
        rename[body.input[0].name], rename[body.input[1].name] = counter, condition
        for value, given in zip(body.input[2:], carried, strict=True):
            rename[value.name] = given
        out.extend(inline(body, prefix, rename, graph))
        carried = [rename.get(v.name, v.name) for v in body.output[1 : 1 + n_carried]]
        for k, value in enumerate(body.output[1 + n_carried :]):
            scans[k].append(rename.get(value.name, value.name))
    for final, result in zip(node.output[:n_carried], carried, strict=True):
        out.append(helper.make_node("Identity", [result], [final], name=f"{name}/{final}"))
    axes = f"{name}/axes0"
    graph.initializer.append(numpy_helper.from_array(np.array([0], np.int64), axes))
    for k, (final, values) in enumerate(zip(node.output[n_carried:], scans, strict=True)):
        stacked = []
        for it, value in enumerate(values):
            stacked.append(f"{name}/scan{k}/{it}")
            if opset >= 13:
                out.append(helper.make_node("Unsqueeze", [value, axes], [stacked[-1]], name=stacked[-1]))
            else:
                out.append(helper.make_node("Unsqueeze", [value], [stacked[-1]], axes=[0], name=stacked[-1]))
        out.append(helper.make_node("Concat", stacked, [final], axis=0, name=f"{name}/{final}"))
    return out
