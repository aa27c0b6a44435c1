"""Pure graph surgery shared by both backends: extra outputs, subgraph cuts, the constants a graph holds."""

from __future__ import annotations

import onnx


def with_outputs(proto: onnx.ModelProto, names: tuple[str, ...]) -> onnx.ModelProto:
    """A copy of the model whose graph outputs are exactly `names` (tensors anywhere in the graph)."""
    known = {v.name: v for v in [*proto.graph.output, *proto.graph.value_info, *proto.graph.input]}
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    del out.graph.output[:]
    for name in names:
        out.graph.output.append(known[name] if name in known else onnx.ValueInfoProto(name=name))
    return out


def cut_from(proto: onnx.ModelProto, layer: str | tuple[str, ...], outputs: tuple[str, ...]) -> onnx.ModelProto:
    """The part of the graph that computes `outputs` from tensor `layer` (or from several tensors at once).

    The layers become graph inputs. Branches that bypass them (skip connections around the cut) still read
    the original graph input, which therefore stays an input when it is needed.
    """
    layers = (layer,) if isinstance(layer, str) else tuple(layer)
    graph = proto.graph
    nodes, needed = _after(graph, layers, outputs)
    initializers = {i.name for i in graph.initializer}
    value_info = {v.name: v for v in [*graph.value_info, *graph.input, *graph.output]}
    inputs = [value_info.get(name, onnx.ValueInfoProto(name=name)) for name in layers]
    inputs += [i for i in graph.input if i.name in needed and i.name not in layers and i.name not in initializers]
    new_graph = onnx.helper.make_graph(
        nodes,
        f"{graph.name}_from_{'_'.join(layers)}",
        inputs,
        [value_info.get(o, onnx.ValueInfoProto(name=o)) for o in outputs],
        initializer=[i for i in graph.initializer if i.name in needed],
        value_info=[v for v in graph.value_info if v.name in needed],
    )
    return onnx.helper.make_model(new_graph, opset_imports=proto.opset_import, ir_version=proto.ir_version)


def bypasses(proto: onnx.ModelProto, layer: str | tuple[str, ...], outputs: tuple[str, ...]) -> tuple[str, ...]:
    """The tensors that the network after `layer` reads besides the layers, and that the graph computes from its
    input before them: a skip connection around the cut (a transformer block's residual). Fed with their values,
    the part after the cut no longer needs the input, nor to recompute everything before it."""
    layers = (layer,) if isinstance(layer, str) else tuple(layer)
    graph = proto.graph
    from_input = {i.name for i in graph.input}
    from_layers = set(layers)
    for node in graph.node:  # graph order is topological order
        if any(i in from_input for i in node.input):
            from_input.update(node.output)
        if any(i in from_layers for i in node.input):
            from_layers.update(node.output)
    nodes, _ = _after(graph, layers, outputs)
    found = dict.fromkeys(name for node in nodes if any(o in from_layers for o in node.output)
                          for name in node.input
                          if name in from_input and name not in from_layers)
    return tuple(found)


def _after(graph: onnx.GraphProto, layers: tuple[str, ...], outputs: tuple[str, ...]
           ) -> tuple[list[onnx.NodeProto], set[str]]:
    """(the nodes that compute `outputs` once `layers` are given, in graph order; every tensor they need)."""
    producer = {o: n for n in graph.node for o in n.output}
    initializers = {i.name for i in graph.initializer}
    needed: set[str] = set()
    kept: set[int] = set()
    stack = list(outputs)
    while stack:
        name = stack.pop()
        stop = name in needed or name in layers or name in initializers or name not in producer
        needed.add(name)
        if stop:
            continue
        node = producer[name]
        if id(node) not in kept:
            kept.add(id(node))
            stack.extend(i for i in node.input if i)
    return [n for n in graph.node if id(n) in kept], needed  # graph order is topological order
