"""Passes from a layer with a skip connection around it (onnxviz/backends/graph.bypasses): the part after the cut
is fed the bypassing tensor, computed once per distinct image, instead of recomputing the network before the cut
for every row. On a hand-built residual graph, the fed subgraph gives what the full cut gives (which reads the
input), row for row, for copies of several images interleaved and for distinct rows."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxviz
from onnxviz.backends.graph import bypasses, cut_from
from onnxviz.backends.ort import distinct_rows

RNG = np.random.default_rng(5)
W1, W2, W3 = (RNG.standard_normal((6, 6)).astype(np.float32) for _ in range(3))


def residual() -> onnx.ModelProto:
    """x (N, 6) -> s = relu(x W1) -> layer = tanh(s W2) -> out = (layer + s) W3: `s` bypasses `layer`."""
    nodes = [helper.make_node("MatMul", ["x", "W1"], ["s0"]), helper.make_node("Relu", ["s0"], ["s"]),
             helper.make_node("MatMul", ["s", "W2"], ["l0"]), helper.make_node("Tanh", ["l0"], ["layer"]),
             helper.make_node("Add", ["layer", "s"], ["sum"]), helper.make_node("MatMul", ["sum", "W3"], ["out"])]
    graph = helper.make_graph(nodes, "residual", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 6])],
                              [numpy_helper.from_array(w, n) for w, n in ((W1, "W1"), (W2, "W2"), (W3, "W3"))])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _numpy(x: np.ndarray, layer: np.ndarray) -> np.ndarray:
    return (layer + np.maximum(x @ W1, 0)) @ W3


@pytest.fixture(scope="module")
def ort():
    return onnxviz.load(residual(), normalize=False).ort


def test_the_skip_connection_is_found_and_the_cut_then_needs_no_input():
    proto = residual()
    assert bypasses(proto, "layer", ("out",)) == ("s",)
    assert [i.name for i in cut_from(proto, "layer", ("out",)).graph.input] == ["layer", "x"]
    assert [i.name for i in cut_from(proto, ("layer", "s"), ("out",)).graph.input] == ["layer", "s"]
    assert bypasses(proto, "sum", ("out",)) == ()  # nothing goes around `sum`


@pytest.mark.parametrize("order", [[0, 0, 1, 0, 2, 1, 1, 2], [0, 1, 2]])
def test_passes_from_the_layer_equal_the_network_row_for_row(ort, monkeypatch, order):
    images = RNG.standard_normal((3, 6)).astype(np.float32)
    x = images[order]
    acts = RNG.standard_normal((len(order), 6)).astype(np.float32)  # ablated layers: every row its own
    full_runs = []
    run = ort.run

    def counted(xb, names):
        full_runs.append(len(xb))
        return run(xb, names)

    monkeypatch.setattr(ort, "run", counted)
    (got,) = ort.run_from("layer", acts, x, ("out",))
    np.testing.assert_allclose(got, _numpy(x, acts), rtol=1e-5, atol=1e-5)
    assert full_runs == ([3] if len(order) > 3 else [])  # the start once per distinct image; none for distinct rows


def test_distinct_rows_keeps_first_occurrences_in_order():
    x = np.array([[1.0, 2], [3, 4], [1, 2], [5, 6], [3, 4]], np.float32)
    first, rows = distinct_rows(x)
    np.testing.assert_array_equal(first, [0, 1, 3])
    np.testing.assert_array_equal(rows, [0, 1, 0, 2, 1])
    np.testing.assert_array_equal(x[first][rows], x)
