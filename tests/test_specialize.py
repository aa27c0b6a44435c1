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
    assert ex.backend == "torch" and model.parity.ok
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


def _loop_model(trips_from_shape: bool = True) -> onnxviz.Model:
    """v <- relu(v) * 0.5 three times (the trip count: 3 x the channel count, read from x's shape, or from its values),
    each step's v stacked as a scan output; y = W flatten(v)."""
    half = numpy_helper.from_array(np.array(0.5, np.float32), "half")
    body = helper.make_graph(
        [helper.make_node("Relu", ["v_in"], ["r"]), helper.make_node("Mul", ["r", "half"], ["v_out"]),
         helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Identity", ["v_out"], ["step"])],
        "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                 helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                 helper.make_tensor_value_info("v_in", TensorProto.FLOAT, ["N", 1, 4, 4])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, ["N", 1, 4, 4]),
         helper.make_tensor_value_info("step", TensorProto.FLOAT, ["N", 1, 4, 4])], [half])
    if trips_from_shape:
        count = [helper.make_node("Shape", ["x"], ["shape"]), helper.make_node("Gather", ["shape", "one"], ["c"]),
                 helper.make_node("Mul", ["c", "three"], ["trips"])]
    else:
        count = [helper.make_node("ReduceMax", ["x"], ["m"], keepdims=0), helper.make_node("Cast", ["m"], ["mi"], to=7),
                 helper.make_node("Abs", ["mi"], ["trips"])]
    nodes = [*count, helper.make_node("Loop", ["trips", "", "x"], ["v", "steps"], body=body),
             helper.make_node("Flatten", ["v"], ["f"]), helper.make_node("Gemm", ["f", "W"], ["y"], transB=1)]
    inits = [numpy_helper.from_array(np.array(1, np.int64), "one"), numpy_helper.from_array(np.array(3, np.int64),
                                                                                              "three"),
             numpy_helper.from_array(W, "W")]
    graph = helper.make_graph(nodes, "looping", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                               ["N", 1, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3]),
                               helper.make_tensor_value_info("steps", TensorProto.FLOAT, ["T", "N", 1, 4, 4])],
                              inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return onnxviz.load(proto, layout="NCHW", preprocessing="unit")


def test_a_loop_with_a_shape_only_trip_count_is_unrolled():
    model = _loop_model()
    x = np.random.default_rng(2).normal(size=(2, 1, 4, 4)).astype(np.float32)
    ex = onnxviz.explain(model, x, "saliency", target="y:2", abs=False, progress=False)
    assert ex.backend == "torch" and model.parity.ok  # parity covers the stacked scan output too
    np.testing.assert_allclose(ex.attributions, 0.125 * W[2].reshape(1, 4, 4) * (x > 0), rtol=1e-6)


def test_a_loop_whose_trip_count_reads_the_input_is_refused_by_name():
    model = _loop_model(trips_from_shape=False)
    with pytest.raises(onnxviz.ConversionError, match=r"operator Loop .*control flow"):
        model.gradient_backend()
