"""Analytic oracles for the attribution suite on hand-built graphs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxviz
from onnxviz.methods.integrated_gradients import path_rule
from tests.tiny_models import gap_net, linear

RNG = np.random.default_rng(7)
W = RNG.standard_normal((3, 16)).astype(np.float32)
B = RNG.standard_normal(3).astype(np.float32)
X = RNG.standard_normal((4, 1, 4, 4)).astype(np.float32)
RULES = ["riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre"]


@pytest.fixture(scope="module")
def linear_model():
    return onnxviz.load(linear(W, B))


def test_input_x_gradient_of_a_linear_model(linear_model):
    ex = onnxviz.explain(linear_model, X, "input_x_gradient", target=1)
    np.testing.assert_allclose(ex.attributions, X * W[1].reshape(1, 1, 4, 4), atol=1e-6)


@pytest.mark.parametrize("rule", RULES)
def test_integrated_gradients_of_a_linear_model_is_exact(linear_model, rule):
    baseline = RNG.standard_normal((1, 1, 4, 4)).astype(np.float32)
    ex = onnxviz.explain(linear_model, X, "integrated_gradients", target=2, n_steps=7, method=rule,
                         baselines=baseline, batch_size=5)
    np.testing.assert_allclose(ex.attributions, W[2].reshape(1, 1, 4, 4) * (X - baseline), atol=1e-5)
    assert max(abs(e) for e in ex.extras["completeness_error"]) < 1e-4


@pytest.mark.parametrize("rule", RULES)
def test_integration_rules_integrate_polynomials(rule):
    alphas, weights = path_rule(rule, 64)
    assert weights.sum() == pytest.approx(1.0)
    assert (weights * alphas**2).sum() == pytest.approx(1 / 3, abs=2e-2)


def test_named_baselines(linear_model):
    for name in ("mean", "blur", "uniform"):
        ex = onnxviz.explain(linear_model, X, "integrated_gradients", target=0, baselines=name, n_steps=4)
        assert max(abs(e) for e in ex.extras["completeness_error"]) < 1e-4
    with pytest.raises(onnxviz.OptionError, match="mean, blur, uniform"):
        onnxviz.explain(linear_model, X, "integrated_gradients", baselines="zeros")


def test_smoothgrad_without_noise_is_its_base(linear_model):
    for nt_type in ("smoothgrad", "smoothgrad_sq"):
        ex = onnxviz.explain(linear_model, X, "smoothgrad", target=1, stdevs=0.0, nt_samples=3, nt_type=nt_type,
                             base="input_x_gradient")
        expected = X * W[1].reshape(1, 1, 4, 4)
        np.testing.assert_allclose(ex.attributions, expected if nt_type == "smoothgrad" else expected**2, atol=1e-5)
    ex = onnxviz.explain(linear_model, X, "smoothgrad", target=1, stdevs=0.0, nt_type="vargrad")
    np.testing.assert_allclose(ex.attributions, 0, atol=1e-6)
    assert ex.attributions.dtype == np.float32
    # a base that returns its attributions with extras (integrated gradients): IG of a linear model is (x - 0) * w
    ex = onnxviz.explain(linear_model, X, "smoothgrad", target=1, stdevs=0.0, nt_samples=2, base="integrated_gradients")
    np.testing.assert_allclose(ex.attributions, X * W[1].reshape(1, 1, 4, 4), atol=1e-5)
    with pytest.raises(onnxviz.OptionError, match="cannot wrap occlusion"):
        onnxviz.explain(linear_model, X, "smoothgrad", base="occlusion")


def _two_layer(w1: np.ndarray, w2: np.ndarray) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", w2.shape[0]])
    nodes = [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Gemm", ["f", "w1"], ["h"], transB=1),
             helper.make_node("Relu", ["h"], ["r"]), helper.make_node("Gemm", ["r", "w2"], ["y"], transB=1)]
    inits = [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")]
    return helper.make_model(helper.make_graph(nodes, "mlp", [x], [y], inits),
                             opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_guided_backprop_and_deconvnet_on_a_two_layer_net():
    w1 = RNG.standard_normal((6, 16)).astype(np.float32)
    w2 = RNG.standard_normal((2, 6)).astype(np.float32)
    model = onnxviz.load(_two_layer(w1, w2), normalize=False)
    active = (X.reshape(4, -1) @ w1.T) > 0
    upstream = np.maximum(w2[0], 0)  # positive part of d y0 / d relu-output
    guided = onnxviz.explain(model, X, "guided_backprop", target=0).attributions.reshape(4, -1)
    deconv = onnxviz.explain(model, X, "deconvnet", target=0).attributions.reshape(4, -1)
    plain = onnxviz.explain(model, X, "saliency", target=0, abs=False).attributions.reshape(4, -1)
    np.testing.assert_allclose(guided, (upstream * active) @ w1, atol=1e-5)
    np.testing.assert_allclose(deconv, np.broadcast_to(upstream @ w1, (4, 16)), atol=1e-5)
    np.testing.assert_allclose(plain, (w2[0] * active) @ w1, atol=1e-5)


@pytest.fixture(scope="module")
def gap():
    conv_w = RNG.standard_normal((5, 1, 3, 3)).astype(np.float32)
    fc_w = RNG.standard_normal((3, 5)).astype(np.float32)
    model = onnxviz.load(gap_net(conv_w, fc_w), normalize=False)
    x = RNG.standard_normal((2, 1, 6, 6)).astype(np.float32)
    return model, x, fc_w, model.ort.run(x, ("act",))[0]


def test_cam_reads_the_head_weights(gap):
    model, x, fc_w, acts = gap
    ex = onnxviz.explain(model, x, "cam", target=2)
    np.testing.assert_allclose(ex.raw, np.maximum(np.einsum("c,nchw->nhw", fc_w[2], acts), 0), atol=1e-5)
    assert ex.backend == "onnxruntime"
    with pytest.raises(onnxviz.MethodError, match="found Relu"):
        onnxviz.explain(model, x, "cam", layer="conv")


def test_gradient_cams_on_a_gap_network(gap):
    model, x, fc_w, acts = gap
    w = fc_w[1] / 36.0  # d logit / d A_c(h, w) everywhere
    expected_gradcam = np.maximum(np.einsum("c,nchw->nhw", w, acts), 0)
    for name in ("gradcam", "hirescam"):
        np.testing.assert_allclose(onnxviz.explain(model, x, name, target=1).raw, expected_gradcam, atol=1e-5)
    layercam = np.maximum(np.einsum("c,nchw->nhw", np.maximum(w, 0), acts), 0)
    np.testing.assert_allclose(onnxviz.explain(model, x, "layercam", target=1).raw, layercam, atol=1e-5)
    xgrad_w = (w[None, :, None, None] * acts / (acts.sum(axis=(2, 3), keepdims=True) + 1e-7)).sum(axis=(2, 3))
    xgrad = np.maximum(np.einsum("nc,nchw->nhw", xgrad_w, acts), 0)
    np.testing.assert_allclose(onnxviz.explain(model, x, "xgradcam", target=1).raw, xgrad, atol=1e-5)


def test_ablationcam_weights_are_the_relative_drop(gap):
    model, x, fc_w, acts = gap
    logits = model.ort.run(x, ("logits",))[0][:, 0]
    drop = fc_w[0][None] * acts.mean(axis=(2, 3))  # zeroing channel c removes its term
    expected = np.maximum(np.einsum("nc,nchw->nhw", drop / logits[:, None], acts), 0)
    np.testing.assert_allclose(onnxviz.explain(model, x, "ablationcam", target=0).raw, expected, rtol=1e-4,
                               atol=1e-5)


def test_layer_aliases(gap):
    model = gap[0]
    assert model.layer("conv:-1").name == "conv" and model.layer("Relu:0").name == "act"
    with pytest.raises(onnxviz.LayerError, match="has 1 Conv layers"):
        model.layer("conv:-2")


def test_integrated_gradients_memory_does_not_grow_with_n_steps(digits_model, digits_batch):
    import tracemalloc

    def peak(n_steps: int) -> int:
        tracemalloc.start()
        # riemann: Gauss-Legendre's own nodes cost O(n_steps^2) to compute (an n x n eigenproblem, 0.7 MB at
        # n_steps=300), which is not the path's memory
        onnxviz.explain(digits_model, digits_batch, "integrated_gradients", n_steps=n_steps, batch_size=16,
                        method="riemann_middle", progress=False)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    peak(8)  # warm caches (sessions, conversion) outside the measurement
    small, large = peak(25), peak(400)
    assert large - small < 256 * 1024, (small, large)  # 16x the steps, same numpy peak (+256 KiB)
