"""The less travelled paths of deployed graphs (issue 21), each on a tiny hand-built graph whose answer is known or
where onnxruntime is the reference: fp16 constants, casts and subgraphs made float32; normalization blocks written
with Mul and Add or Constant nodes; per-channel fake quantization; ConvInteger with asymmetric pads; loops of an
opset-11 graph whose body passes a value through; an If whose condition reads another If's values."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxviz
from onnxviz.backends import precision
from onnxviz.backends.specialize import shape_ifs

pytest.importorskip("torch")


def _image_graph(nodes, inits, out_shape=("N", 3), opset=17, elem=TensorProto.FLOAT) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "edge", [helper.make_tensor_value_info("x", elem, ["N", 3, 4, 4])],
                              [helper.make_tensor_value_info("y", elem, list(out_shape))], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_fp16_constants_casts_and_subgraphs_become_float32():
    half = np.float16
    then_branch = helper.make_graph(
        [helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.array(2, half), "k")),
         helper.make_node("Mul", ["x", "k"], ["t"])], "then", [],
        [helper.make_tensor_value_info("t", TensorProto.FLOAT16, ["N", 3, 4, 4])])
    else_branch = helper.make_graph([helper.make_node("Identity", ["x"], ["e"])], "else", [],
                                    [helper.make_tensor_value_info("e", TensorProto.FLOAT16, ["N", 3, 4, 4])])
    nodes = [helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.array(0.5, half), "c")),
             helper.make_node("Mul", ["x", "c"], ["m"]),
             helper.make_node("Cast", ["m"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("Cast", ["f"], ["back"], to=TensorProto.FLOAT16),
             helper.make_node("Size", ["x"], ["s"]), helper.make_node("Greater", ["s", "zero"], ["cond"]),
             helper.make_node("If", ["cond"], ["b"], then_branch=then_branch, else_branch=else_branch),
             helper.make_node("Add", ["back", "b"], ["sum"]),
             helper.make_node("ReduceMean", ["sum"], ["y"], axes=[2, 3], keepdims=0)]
    proto = _image_graph(nodes, [numpy_helper.from_array(np.array(0, np.int64), "zero")], opset=17,
                         elem=TensorProto.FLOAT16)
    converted = precision.as_float32(proto)
    text = str(converted)
    assert "data_type: 10" not in text and "elem_type: 10" not in text and "i: 10" not in text  # FLOAT16 is 10
    model = onnxviz.load(proto, preprocessing="unit")
    model.gradient_backend()
    assert model.parity.ok and model.parity.tolerance == pytest.approx(32 * 2.0**-10)
    x = np.random.default_rng(0).random((2, 3, 4, 4)).astype(np.float16)
    ex = onnxviz.explain(model, x, "saliency", target=1, abs=False, progress=False)
    np.testing.assert_allclose(ex.attributions[:, 1], np.full((2, 4, 4), 2.5 / 16), rtol=1e-3)  # (0.5 + 2) / 16
    assert precision.parity_tolerance(proto, 1e-3) == pytest.approx(0.03125)


@pytest.mark.parametrize("as_constant_nodes", [False, True])
def test_a_normalization_written_with_mul_and_add_is_detected(as_constant_nodes):
    """x * (1/255) + (-mean/std) ... : the same affine block as Div / Sub / Div, read from initializers or Constant
    nodes; c - x (an inversion) is no normalization."""
    from onnxviz.baked import detect

    mean, std = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
    values = {"a": np.array(1 / 255, np.float32), "m": (1 / std).reshape(1, 3, 1, 1),
              "b": (-mean / std).reshape(1, 3, 1, 1), "w": np.ones((3, 48), np.float32)}
    consts = [helper.make_node("Constant", [], [k], value=numpy_helper.from_array(v, k)) for k, v in values.items()
              if k != "w"] if as_constant_nodes else []
    inits = [numpy_helper.from_array(v, k) for k, v in values.items() if k == "w" or not as_constant_nodes]
    nodes = [*consts, helper.make_node("Mul", ["x", "a"], ["s"]), helper.make_node("Mul", ["s", "m"], ["t"]),
             helper.make_node("Add", ["t", "b"], ["n"]), helper.make_node("Flatten", ["n"], ["f"]),
             helper.make_node("Gemm", ["f", "w"], ["y"], transB=1)]
    block = detect(_image_graph(nodes, inits), "x", 3)
    assert block is not None and block.pixels == 255 and block.ops == ("Mul", "Mul", "Add")
    np.testing.assert_allclose(block.scale, 1 / (255 * std), rtol=1e-6)
    np.testing.assert_allclose(block.shift, -mean / std, rtol=1e-6)
    inverted = [helper.make_node("Sub", ["one", "x"], ["n"]), helper.make_node("Flatten", ["n"], ["f"]),
                helper.make_node("Gemm", ["f", "w"], ["y"], transB=1)]
    assert detect(_image_graph(inverted, [numpy_helper.from_array(np.array(1.0, np.float32), "one"),
                                          numpy_helper.from_array(values["w"], "w")]), "x", 3) is None


@pytest.mark.parametrize(("axis", "scales", "zeros"), [(1, [0.1, 0.02, 0.5], [0, 10, -5]),
                                                      (3, [0.1, 0.02, 0.5, 0.05], [0, 10, -5, 3])])
def test_per_channel_fake_quantization_matches_onnxruntime(axis, scales, zeros):
    """Activations quantized along an axis (one scale and zero point per channel, or per column): values equal
    onnxruntime's, the gradient passes where each slice's grid holds x and is 0 where it clips."""
    scales, zeros = np.array(scales, np.float32), np.array(zeros, np.int8)
    inits = [numpy_helper.from_array(scales, "s"), numpy_helper.from_array(zeros, "z"),
             numpy_helper.from_array(np.ones((3, 48), np.float32), "w")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], axis=axis),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"], axis=axis),
             helper.make_node("Flatten", ["d"], ["f"]), helper.make_node("Gemm", ["f", "w"], ["y"], transB=1)]
    model = onnxviz.load(_image_graph(nodes, inits, opset=13), preprocessing="unit")
    model.gradient_backend()
    assert model.parity.max_abs_diff < 1e-5
    x = np.random.default_rng(1).normal(0, 3, (2, 3, 4, 4)).astype(np.float32)
    ex = onnxviz.explain(model, x, "saliency", target=0, abs=False, progress=False)
    shape = [1, 1, 1, 1]
    shape[axis] = -1
    low = ((-128 - zeros.astype(int)) * scales).reshape(shape)
    high = ((127 - zeros.astype(int)) * scales).reshape(shape)
    np.testing.assert_array_equal(ex.attributions, ((x >= low - 1e-6) & (x <= high + 1e-6)).astype(np.float32))


def test_conv_integer_with_asymmetric_pads_matches_onnxruntime():
    rng = np.random.default_rng(2)
    inits = [numpy_helper.from_array(rng.integers(-20, 20, (4, 3, 3, 3)).astype(np.int8), "wq"),
             numpy_helper.from_array(np.array(3, np.uint8), "xz"), numpy_helper.from_array(np.array(2, np.int8), "wz"),
             numpy_helper.from_array(np.ones((3, 4 * 5 * 5), np.float32), "g")]
    nodes = [helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xzp"]),
             helper.make_node("ConvInteger", ["xq", "wq", "xz", "wz"], ["ci"], pads=[1, 1, 2, 2]),
             helper.make_node("Cast", ["ci"], ["cf"], to=TensorProto.FLOAT), helper.make_node("Flatten", ["cf"], ["f"]),
             helper.make_node("Gemm", ["f", "g"], ["y"], transB=1)]
    model = onnxviz.load(_image_graph(nodes, inits, opset=13), preprocessing="unit")
    model.gradient_backend()
    assert model.parity.max_abs_diff == 0, model.parity


def test_an_opset_11_loop_passing_a_value_through_is_unrolled():
    """The body returns one carried value unchanged and stacks it (Unsqueeze with an axes attribute in opset 11)."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Relu", ["v_in"], ["v_out"]),
         helper.make_node("Identity", ["v_out"], ["step"])],
        "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                 helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                 helper.make_tensor_value_info("v_in", TensorProto.FLOAT, ["N", 3, 4, 4]),
                 helper.make_tensor_value_info("keep", TensorProto.FLOAT, ["N", 3, 4, 4])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, ["N", 3, 4, 4]),
         helper.make_tensor_value_info("keep", TensorProto.FLOAT, ["N", 3, 4, 4]),
         helper.make_tensor_value_info("step", TensorProto.FLOAT, ["N", 3, 4, 4])])
    nodes = [helper.make_node("Loop", ["two", "", "x", "x"], ["v", "kept", "steps"], body=body),
             helper.make_node("Add", ["v", "kept"], ["s"]), helper.make_node("ReduceSum", ["steps"], ["t"],
                                                                              axes=[0], keepdims=0),
             helper.make_node("Add", ["s", "t"], ["u"]), helper.make_node("Flatten", ["u"], ["f"]),
             helper.make_node("Gemm", ["f", "w"], ["y"], transB=1)]
    inits = [numpy_helper.from_array(np.array(2, np.int64), "two"),
             numpy_helper.from_array(np.ones((3, 48), np.float32), "w")]
    model = onnxviz.load(_image_graph(nodes, inits, opset=11), preprocessing="unit")
    x = np.random.default_rng(3).normal(size=(2, 3, 4, 4)).astype(np.float32)
    ex = onnxviz.explain(model, x, "saliency", target=0, abs=False, progress=False)
    assert ex.backend == "torch" and model.parity.ok
    np.testing.assert_allclose(ex.attributions, 1 + 3 * (x > 0), rtol=1e-6)  # kept x, relu(x), and 2 stacked relus


def test_an_if_reading_another_ifs_values_is_not_specialized():
    """If #1 branches on a shape but returns x's values; If #2 branches on the sum of If #1's output: a condition
    that reads the input's values, which no probe may fix."""
    def branch(name: str, op: str) -> onnx.GraphProto:
        return helper.make_graph([helper.make_node(op, ["x"], [name])], name, [],
                                 [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", 3, 4, 4])])

    nodes = [helper.make_node("Size", ["x"], ["s"]), helper.make_node("Greater", ["s", "zero"], ["c1"]),
             helper.make_node("If", ["c1"], ["b1"], then_branch=branch("r1", "Relu"), else_branch=branch("n1", "Neg")),
             helper.make_node("ReduceSum", ["b1"], ["total"], keepdims=0),
             helper.make_node("Greater", ["total", "zerof"], ["c2"]),
             helper.make_node("If", ["c2"], ["b2"], then_branch=branch("r2", "Relu"), else_branch=branch("n2", "Neg")),
             helper.make_node("Flatten", ["b2"], ["f"]), helper.make_node("Gemm", ["f", "w"], ["y"], transB=1)]
    inits = [numpy_helper.from_array(np.array(0, np.int64), "zero"), numpy_helper.from_array(np.array(0.0,
                                                                                                    np.float32),
                                                                                           "zerof"),
             numpy_helper.from_array(np.ones((3, 48), np.float32), "w")]
    proto = _image_graph(nodes, inits)
    assert [n.output[0] for n in shape_ifs(proto)] == ["b1"]


def test_a_normalization_written_with_div_and_sub_has_the_affine_it_computes():
    from onnxviz.baked import detect

    mean, std = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
    inits = [numpy_helper.from_array(np.array(255, np.float32), "k"), numpy_helper.from_array(mean.reshape(1, 3, 1, 1),
                                                                                              "mean"),
             numpy_helper.from_array(std.reshape(1, 3, 1, 1), "std"), numpy_helper.from_array(np.ones((3, 48),
                                                                                                    np.float32), "w")]
    nodes = [helper.make_node("Div", ["x", "k"], ["a"]), helper.make_node("Sub", ["a", "mean"], ["b"]),
             helper.make_node("Div", ["b", "std"], ["n"]), helper.make_node("Flatten", ["n"], ["f"]),
             helper.make_node("Gemm", ["f", "w"], ["y"], transB=1)]
    block = detect(_image_graph(nodes, inits), "x", 3)
    assert block is not None and block.ops == ("Div", "Sub", "Div") and block.pixels == 255
    np.testing.assert_allclose(block.scale, 1 / (255 * std), rtol=1e-6)
    np.testing.assert_allclose(block.shift, -mean / std, rtol=1e-6)
