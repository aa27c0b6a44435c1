"""Loading: normalization with fallback, layout detection, softmax tails, layers and their resolution."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import onnxviz
from onnxviz import model as model_module
from tests.tiny_models import gap_net, linear

RNG = np.random.default_rng(0)


def test_normalization_that_changes_outputs_is_rejected(monkeypatch):
    proto = linear(RNG.standard_normal((3, 16)), RNG.standard_normal(3))

    def bad_slim(original):
        changed = onnx.ModelProto()
        changed.CopyFrom(original)
        for init in changed.graph.initializer:
            if init.name == "b":
                init.CopyFrom(onnx.numpy_helper.from_array(np.zeros(3, np.float32), "b"))
        return changed, "onnxslim"

    monkeypatch.setattr(model_module, "_normalize", bad_slim)
    model = onnxviz.load(proto)
    assert model.normalization == "kept the original graph (onnxslim changed the outputs)"
    b = next(i for i in model.proto.graph.initializer if i.name == "b")
    assert np.abs(onnx.numpy_helper.to_array(b)).sum() > 0


def test_normalization_failure_keeps_the_original(monkeypatch):
    import onnxslim

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(onnxslim, "slim", boom)
    model = onnxviz.load(linear(RNG.standard_normal((3, 16)), RNG.standard_normal(3)))
    assert model.normalization.startswith("kept the original graph (onnxslim failed")


def _transpose_first(shape, channels_last: bool) -> onnx.ModelProto:
    """Input -> (Transpose to NCHW) -> Conv -> GAP -> Flatten: a graph whose layout hides in its first node."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2])] if channels_last else \
        [helper.make_node("Identity", ["x"], ["t"])]
    nodes += [helper.make_node("Conv", ["t", "w"], ["c"], kernel_shape=[1, 1]),
              helper.make_node("GlobalAveragePool", ["c"], ["p"]), helper.make_node("Flatten", ["p"], ["y"])]
    w = onnx.numpy_helper.from_array(RNG.standard_normal((2, 3, 1, 1)).astype(np.float32), "w")
    graph = helper.make_graph(nodes, "g", [x], [y], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_layout_is_detected_from_shape_or_from_the_first_transpose():
    assert onnxviz.load(_transpose_first(["N", 8, 8, 3], True)).input.layout == "NHWC"
    assert onnxviz.load(_transpose_first(["N", 3, 8, 8], False)).input.layout == "NCHW"
    # 3x3x3: the shape cannot tell; the leading Transpose(0, 3, 1, 2) does
    assert onnxviz.load(_transpose_first(["N", 3, 3, 3], True)).input.layout == "NHWC"
    assert onnxviz.load(_transpose_first(["N", 3, 3, 3], True), layout="NCHW").input.layout == "NCHW"


def test_softmax_tail_and_score_tensor():
    model = onnxviz.load(linear(RNG.standard_normal((3, 16)), RNG.standard_normal(3), softmax=True))
    assert model.softmax_tails == {"probs": "logits"}
    assert model.score_tensor(onnxviz.Target()) == ("logits", False)
    assert model.score_tensor(onnxviz.Target.parse("softmax:1")) == ("probs", False)
    with pytest.raises(onnxviz.TargetError, match="outputs are: probs"):
        model.score_tensor(onnxviz.Target(output="nope"))


def test_layers_resolve_by_tensor_node_and_alias():
    model = onnxviz.load(gap_net(RNG.standard_normal((4, 1, 3, 3)), RNG.standard_normal((2, 4))), normalize=False)
    assert model.default_layer.name == "act"
    assert model.layer(None).name == "act"
    assert model.layer("last_conv").name == "conv"
    node_name = next(layer.node for layer in model.layers if layer.name == "pool")
    assert model.layer(node_name).name == "pool"
    assert [layer.shape for layer in model.layers if layer.name == "act"] == [("N", 4, 6, 6)]


def test_target_parsing():
    t = onnxviz.Target.parse
    assert t(281) == onnxviz.Target(281)
    assert t("softmax:top1") == onnxviz.Target("top1", softmax=True)
    assert t("logits:5") == onnxviz.Target(5, output="logits")
    assert str(t("softmax:logits:5")) == "softmax:logits:5"
    with pytest.raises(onnxviz.TargetError):
        t("a:b:5")


def test_cuda_request_without_cuda_falls_back_with_a_notice():
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA")
    with pytest.warns(UserWarning, match="using CPU"):
        model = onnxviz.load(linear(RNG.standard_normal((3, 16)), RNG.standard_normal(3)), device="cuda")
        assert model.ort.providers == ["CPUExecutionProvider"]
