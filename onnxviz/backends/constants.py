"""The constant tensors of a graph: initializers and Constant nodes, by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx


def constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Tensor name -> value of the graph's initializers and Constant nodes (a `value` attribute)."""
    from onnx import numpy_helper  # onnx takes 0.6 s to import: plugins that call this (fullgrad) are listed without it

    found = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            found[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return found
