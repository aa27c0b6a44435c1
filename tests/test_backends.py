"""Backend primitives: intermediate tensors, running on from a layer (Score-CAM / Ablation-CAM will need it),
and conversion errors that name the operator."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import onnxviz
from onnxviz.context import Context
from onnxviz.demo import demo_model_path
from tests.tiny_models import gap_net


@pytest.fixture(scope="module")
def resnet(build_reference, photos):
    ref = build_reference("resnet18_legacy")
    model = onnxviz.load(ref.path)
    return model, onnxviz.load_image(photos[:2], model)


def _ctx(model, x, layer=None):
    return Context(model, onnxviz.Target(), model.ort.run(x, (model.outputs[0],))[0].argmax(1), model.layer(layer))


def test_running_on_from_a_layer_reproduces_the_scores(resnet):
    model, x = resnet
    ctx = _ctx(model, x)
    acts = ctx.activations(x)
    np.testing.assert_allclose(ctx.score_from(ctx.layer.name, acts, x), ctx.score(x), rtol=1e-5, atol=1e-5)


def test_a_cut_inside_a_residual_block_keeps_the_skip_branch(resnet):
    model, x = resnet
    inner = next(layer.name for layer in model.layers if "layer3.0/relu/Relu" in layer.name)
    ctx = _ctx(model, x, inner)
    acts = ctx.activations(x)
    np.testing.assert_allclose(ctx.score_from(inner, acts, x), ctx.score(x), rtol=1e-5, atol=1e-5)
    ablated = acts.copy()
    ablated[:, :8] = 0
    assert not np.allclose(ctx.score_from(inner, ablated, x), ctx.score(x))


def test_zeroing_a_channel_from_the_layer_matches_the_analytic_change():
    rng = np.random.default_rng(1)
    conv_w, fc_w = rng.standard_normal((4, 1, 3, 3)), rng.standard_normal((2, 4))
    model = onnxviz.load(gap_net(conv_w, fc_w), normalize=False)
    x = rng.standard_normal((3, 1, 6, 6)).astype(np.float32)
    ctx = Context(model, onnxviz.Target(), np.array([1, 1, 1]), model.layer("act"))
    acts = ctx.activations(x)
    ablated = acts.copy()
    ablated[:, 2] = 0
    drop = ctx.score(x) - ctx.score_from("act", ablated, x)
    np.testing.assert_allclose(drop, fc_w[1, 2] * acts[:, 2].mean(axis=(1, 2)), rtol=1e-4, atol=1e-5)


def test_layer_gradients_match_finite_differences_on_the_digits_model(digits_model, digits_batch):
    ctx = Context(digits_model, onnxviz.Target(), np.array([0, 3, 5, 8]), digits_model.default_layer)
    layer = ctx.layer.name
    acts, grads = ctx.grad(digits_batch, wrt=layer, with_activations=True)
    idx = np.unravel_index(np.argmax(np.abs(grads[0])), grads[0].shape)
    h = 1e-2
    plus, minus = acts[:1].copy(), acts[:1].copy()
    plus[(0, *idx)] += h
    minus[(0, *idx)] -= h
    first = ctx.for_samples([0])
    numeric = first.score_from(layer, plus, digits_batch[:1]) - first.score_from(layer, minus, digits_batch[:1])
    np.testing.assert_allclose(numeric[0] / (2 * h), grads[(0, *idx)], rtol=1e-2)


def test_unconvertible_operator_is_named_with_its_opset():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    graph = helper.make_graph([helper.make_node("Hardmax", ["x"], ["y"])], "g", [x], [y])
    model = onnxviz.load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8))
    with pytest.raises(onnxviz.ConversionError, match=r"operator Hardmax \(schema version 13, model opset 17\)"):
        model.torch  # noqa: B018
    assert "Hardmax" in model.conversion_error


def test_intermediate_tensors_from_both_backends_agree(digits_model, digits_batch):
    import torch

    names = tuple(layer.name for layer in digits_model.layers)
    ort_values = digits_model.ort.run(digits_batch, names)
    with torch.no_grad():
        torch_values = digits_model.torch.forward(digits_model.torch.to_tensor(digits_batch), names)
    for name, a, b in zip(names, ort_values, torch_values, strict=True):
        np.testing.assert_allclose(a, b.numpy(), atol=1e-4 * max(1.0, float(np.abs(a).max())), err_msg=name)


def test_graph_outputs_for_unknown_shapes_still_run():
    proto = onnx.load(str(demo_model_path()))
    model = onnxviz.load(proto, normalize=False)
    del model.proto.graph.value_info[:]
    out = model.ort.run(model.probe_input(2), (model.default_layer.name,))[0]
    assert out.shape == (2, 64, 8, 8)
