"""Our own model validator, run before onnxruntime or onnx2torch see a model: versions, subgraph depth, operator
domains, graph structure (undefined names, cycles), and a size budget for every tensor."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import onnx

from ..errors import ModelError
from ..text import bytes_text, shape_text
from . import external
from .limits import Limits
from .walk import Body, is_external, walk


def validate(proto: onnx.ModelProto, folder: Path | None, limits: Limits) -> bool:
    """Raise ModelError on the first problem; inline external data in place. True when data was inlined."""
    _versions(proto)
    found = walk(proto, limits.max_subgraph_depth)
    if found.deepest > limits.max_subgraph_depth:
        raise ModelError(f"If / Loop / Scan bodies are nested more than {limits.max_subgraph_depth} deep; onnxviz "
                         "refuses such graphs (a way to exhaust the parser)")
    _domains(proto, found.bodies, limits)
    for body in found.bodies:
        _structure(body, outer=_outer_names(found.bodies, body))
    return _tensors(found.tensors, folder, limits)


def _versions(proto: onnx.ModelProto) -> None:
    if proto.ir_version > onnx.IR_VERSION:
        raise ModelError(f"the model uses ONNX IR version {proto.ir_version}, newer than this onnx supports "
                         f"({onnx.IR_VERSION}); upgrade: pip install -U onnx onnxruntime")
    newest = onnx.defs.onnx_opset_version()
    for op in proto.opset_import:
        if op.domain in ("", "ai.onnx") and op.version > newest:
            raise ModelError(f"the model needs ONNX opset {op.version}, newer than this onnx supports ({newest}); "
                             "upgrade: pip install -U onnx onnxruntime")


def _domains(proto: onnx.ModelProto, found: list[Body], limits: Limits) -> None:
    local = {(f.domain, f.name) for f in proto.functions}
    foreign = Counter(f"{n.domain}::{n.op_type}" for b in found for n in b.nodes
                      if n.domain not in limits.domains and (n.domain, n.op_type) not in local)
    if foreign:
        ops = ", ".join(f"{op} x{k}" if k > 1 else op for op, k in sorted(foreign.items()))
        domains = sorted({op.split("::")[0] for op in foreign})
        raise ModelError(f"the model uses operators outside the standard ONNX domains: {ops}. Contrib and custom "
                         f"ops run only when you trust the model: --allow-domain {' --allow-domain '.join(domains)} "
                         f"(Python: Limits(allowed_domains={set(domains)}))")


def _outer_names(found: list[Body], body: Body) -> set[str]:
    """Names a subgraph may read from the scopes around it (a superset: every enclosing graph's names)."""
    if body.depth == 0:
        return set()
    around = [b for b in found if b.depth < body.depth]
    return {name for b in around for name in (*b.inputs, *(o for n in b.nodes for o in n.output))}


def _structure(body: Body, outer: set[str]) -> None:
    producer: dict[str, int] = {}
    for i, node in enumerate(body.nodes):
        for out in node.output:
            if out and (out in producer or out in body.inputs):
                raise ModelError(f"tensor {out!r} is defined twice in {body.where}; the graph is malformed")
            if out:
                producer[out] = i
    known = set(body.inputs) | outer | {""}
    waiting = [0] * len(body.nodes)
    users: dict[int, list[int]] = {}
    for i, node in enumerate(body.nodes):
        for name in node.input:
            if name in producer:
                waiting[i] += 1
                users.setdefault(producer[name], []).append(i)
            elif name not in known:
                raise ModelError(f"node {node.name or node.op_type!r} in {body.where} reads {name!r}, which no input, "
                                 "initializer or node defines")
    ready = [i for i, k in enumerate(waiting) if k == 0]
    done = 0
    while ready:
        i = ready.pop()
        done += 1
        for j in users.get(i, ()):
            waiting[j] -= 1
            if waiting[j] == 0:
                ready.append(j)
    if done < len(body.nodes):
        stuck = [body.nodes[i].name or body.nodes[i].op_type for i, k in enumerate(waiting) if k > 0]
        raise ModelError(f"{body.where} has a cycle through nodes {', '.join(map(repr, stuck[:5]))}: not a valid ONNX "
                         "graph")
    for name in body.outputs:
        if name not in producer and name not in known:
            raise ModelError(f"output {name!r} of {body.where} is never computed")


def _tensors(found: list[tuple[onnx.TensorProto, str, bool]], folder: Path | None, limits: Limits) -> bool:
    budget = [limits.max_file_bytes]
    inlined = False
    for tensor, where, dense in found:
        if any(d < 0 for d in tensor.dims):
            raise ModelError(f"{where} has a negative dimension {list(tensor.dims)}")
        size = external.declared_bytes(tensor)
        if size is not None and size > limits.max_tensor_bytes:
            shape = shape_text(tensor.dims, product=True)
            raise ModelError(f"{where} declares {shape} = {bytes_text(size)}, which exceeds "
                             f"the budget of {bytes_text(limits.max_tensor_bytes)} per tensor; raise it with "
                             "--max-tensor-size if that is intended")
        if dense:
            continue
        if is_external(tensor):
            external.inline(tensor, folder, where, limits, budget)
            inlined = True
        elif tensor.raw_data and size is not None and len(tensor.raw_data) != size:
            raise ModelError(f"{where} holds {len(tensor.raw_data)} bytes where its shape needs {size}")
    return inlined


def inferred_budget(proto: onnx.ModelProto, limits: Limits) -> None:
    """Tensors whose size shape inference can compute (at the declared input shapes) stay within the budget."""
    try:
        inferred = onnx.shape_inference.infer_shapes(proto, data_prop=True)
    except Exception:  # inference errors are the checker's and onnxruntime's to report
        return
    graph = inferred.graph
    producer = {o: n for n in graph.node for o in n.output}
    for value in (*graph.value_info, *graph.output):
        ttype = value.type.tensor_type
        dims = ttype.shape.dim
        if not ttype.HasField("shape") or not all(d.HasField("dim_value") for d in dims):
            continue
        size = external.nbytes(ttype.elem_type, [d.dim_value for d in dims])
        if size is not None and size > limits.max_tensor_bytes:
            node = producer.get(value.name)
            origin = f" (from {node.op_type} node {node.name or node.output[0]!r})" if node is not None else ""
            shape = shape_text([d.dim_value for d in dims], product=True)
            raise ModelError(f"tensor {value.name!r}{origin} would be {shape} = "
                             f"{bytes_text(size)}, which exceeds the budget of {bytes_text(limits.max_tensor_bytes)}"
                             " per tensor; raise it with --max-tensor-size if that is intended")
