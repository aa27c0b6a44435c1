"""Control flow for the torch backend (issue 21): an If whose condition is a function of shapes only (torchvision's
detection exports branch on emptiness and sizes) is specialized to the branch it takes and converted; one that
reads the input's values is refused saying so. Oracle: the analytic gradient of the branch taken."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxviz
from onnxviz.backends.specialize import shape_ifs

pytest.importorskip("torch")
W = np.random.default_rng(0).normal(size=(3, 16)).astype(np.float32)


def _model(condition: list, threshold) -> onnxviz.Model:
    """y = W flatten(relu(x)) when the condition holds, W flatten(-x) otherwise."""
    then_branch = helper.make_graph([helper.make_node("Relu", ["x"], ["r"])], "then", [],
                                    [helper.make_tensor_value_info("r", TensorProto.FLOAT, None)])
    else_branch = helper.make_graph([helper.make_node("Neg", ["x"], ["n"])], "else", [],
                                    [helper.make_tensor_value_info("n", TensorProto.FLOAT, None)])
    nodes = [*condition, helper.make_node("Greater", ["measure", "threshold"], ["cond"]),
             helper.make_node("If", ["cond"], ["b"], then_branch=then_branch, else_branch=else_branch),
             helper.make_node("Flatten", ["b"], ["f"]), helper.make_node("Gemm", ["f", "W"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "branching", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                 ["N", 1, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
                              [numpy_helper.from_array(threshold, "threshold"), numpy_helper.from_array(W, "W")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return onnxviz.load(proto, layout="NCHW", preprocessing="unit")


def test_an_if_on_shapes_takes_its_branch_and_converts():
    model = _model([helper.make_node("Size", ["x"], ["measure"])], np.array(0, np.int64))  # Size > 0: then
    assert len(shape_ifs(model.proto)) == 1
    x = np.random.default_rng(1).normal(size=(2, 1, 4, 4)).astype(np.float32)
    ex = onnxviz.explain(model, x, "saliency", target=1, abs=False, progress=False)
    assert ex.backend == "onnxruntime+torch" and model.parity.ok
    np.testing.assert_allclose(ex.attributions, W[1].reshape(1, 4, 4) * (x > 0), rtol=1e-6)  # the Relu branch
    other = _model([helper.make_node("Size", ["x"], ["measure"])], np.array(10**6, np.int64))  # else: Neg
    np.testing.assert_allclose(onnxviz.explain(other, x, "saliency", target=1, abs=False, progress=False)
                               .attributions, np.broadcast_to(-W[1].reshape(1, 4, 4), x.shape), rtol=1e-6)


def test_an_if_on_the_inputs_values_is_refused_with_the_reason():
    model = _model([helper.make_node("ReduceSum", ["x"], ["measure"], keepdims=0)], np.array(0.0, np.float32))
    assert not shape_ifs(model.proto)
    with pytest.raises(onnxviz.ConversionError, match=r"operator If .*reads the input's values"):
        model.gradient_backend()
    x = np.ones((1, 1, 4, 4), np.float32)
    assert onnxviz.explain(model, x, "occlusion", window=(2,), stride=(2,), progress=False).attributions.any()
