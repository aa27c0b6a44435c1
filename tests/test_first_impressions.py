"""Warnings that tell the truth (issue 17 item 7): a CAM zeroed by its ReLU is not blamed on a constant score,
MaxPool's -inf padding is not a broken weight, and FLOPs of a model with an open input size are counted at the
size it runs at."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxviz
from onnxviz.inspect.summary import totals


def _save(model: onnx.ModelProto, path) -> str:
    model.ir_version = 8
    onnx.save(model, path)
    return str(path)


def _cam_net(fc_sign: float, size: list) -> onnx.ModelProto:
    """x -> Conv (non-negative weights) -> Relu -> GAP -> Gemm with all-positive or all-negative class weights."""
    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, *size])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2])
    nodes = [helper.make_node("Conv", ["x", "Wc"], ["conv"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
             helper.make_node("Relu", ["conv"], ["act"]),
             helper.make_node("GlobalAveragePool", ["act"], ["pool"]),
             helper.make_node("Flatten", ["pool"], ["flat"], axis=1),
             helper.make_node("Gemm", ["flat", "Wf"], ["logits"], transB=1)]
    inits = [numpy_helper.from_array(np.abs(rng.standard_normal((4, 1, 3, 3))).astype(np.float32), "Wc"),
             numpy_helper.from_array((fc_sign * np.abs(rng.standard_normal((2, 4)))).astype(np.float32), "Wf")]
    return helper.make_model(helper.make_graph(nodes, "cam", [x], [y], inits),
                             opset_imports=[helper.make_opsetid("", 17)])


def test_a_cam_zeroed_by_its_relu_says_so(tmp_path):
    model = onnxviz.load(_save(_cam_net(-1.0, [8, 12]), tmp_path / "neg.onnx"))
    x = np.random.default_rng(1).random((1, 1, 8, 12)).astype(np.float32)
    with pytest.warns(onnxviz.errors.NumericWarning) as caught:
        ex = onnxviz.explain(model, x, "cam", target=0, progress=False)
    text = " ".join(str(w.message) for w in caught)
    assert not ex.attributions.any()
    assert "CAM's ReLU keeps only positive evidence" in text and "constant model" not in text
    positive = onnxviz.load(_save(_cam_net(1.0, [8, 12]), tmp_path / "pos.onnx"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", onnxviz.errors.NumericWarning)
        assert onnxviz.explain(positive, x, "cam", target=0, progress=False).attributions.any()


def test_minus_infinity_as_maxpool_padding_is_not_a_broken_weight(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    nodes = [helper.make_node("Pad", ["x", "pads", "pad_value"], ["padded"]),
             helper.make_node("MaxPool", ["padded"], ["pooled"], kernel_shape=[3, 3], strides=[2, 2]),
             helper.make_node("Flatten", ["pooled"], ["y"], axis=1)]
    inits = [numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"),
             numpy_helper.from_array(np.array(-np.inf, np.float32), "pad_value")]
    model = helper.make_model(helper.make_graph(nodes, "pad", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = onnxviz.load(_save(model, tmp_path / "pad.onnx"))
    assert loaded.nonfinite_weights == [] and not [w for w in caught if "NaN or Inf" in str(w.message)]
    broken = onnx.load(tmp_path / "pad.onnx")
    broken.graph.initializer.append(numpy_helper.from_array(np.array([np.inf, 1], np.float32), "w"))
    broken.graph.node.append(helper.make_node("Mul", ["y", "w2"], ["unused"]))
    broken.graph.initializer.append(numpy_helper.from_array(np.full((1, 4), np.inf, np.float32), "w2"))
    with pytest.warns(UserWarning, match="NaN or Inf in its weights"):
        assert "w2" in onnxviz.load(_save(broken, tmp_path / "broken.onnx"), normalize=False).nonfinite_weights


def test_flops_of_an_open_size_model_are_counted_at_its_input_size(tmp_path):
    model = onnxviz.load(_save(_cam_net(1.0, ["H", "W"]), tmp_path / "open.onnx"))
    model.use_preprocessing(size=(40, 60))
    # the only Conv: 2 * (1 * 3 * 3) multiply-adds for each of 4 x 40 x 60 outputs; the Gemm: 2 * 4 * 2
    assert totals(model)[1] == 2 * 9 * 4 * 40 * 60 + 2 * 4 * 2


def test_the_demo_names_the_digit_its_model_gets_wrong_and_a_rerun_says_how(tmp_path):
    from click.testing import CliRunner

    from onnxviz.cli import cli
    from onnxviz.demo import run_demo

    _, notes = run_demo(tmp_path / "demo", progress=False)
    assert [n for n in notes if "shows a 5 and the model predicts 9" in n]
    again = CliRunner().invoke(cli, ["demo", "-q", "--out", str(tmp_path / "demo")])
    assert again.exit_code == 1 and "pass --overwrite" in again.output
