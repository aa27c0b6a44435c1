"""Analytic oracles on hand-built graphs: the methods must return the exact answer."""

from __future__ import annotations

import numpy as np
import pytest

import onnxviz
from tests.tiny_models import gap_net, linear

RNG = np.random.default_rng(42)
W = RNG.standard_normal((3, 16)).astype(np.float32)
B = RNG.standard_normal(3).astype(np.float32)
X = RNG.standard_normal((4, 1, 4, 4)).astype(np.float32)


@pytest.fixture(scope="module")
def linear_model():
    return onnxviz.load(linear(W, B))


def test_saliency_of_a_linear_model_is_its_weights(linear_model):
    ex = onnxviz.explain(linear_model, X, "saliency", target=2, abs=False)
    np.testing.assert_allclose(ex.attributions, np.broadcast_to(W[2].reshape(1, 1, 4, 4), X.shape), atol=1e-6)
    ex = onnxviz.explain(linear_model, X, "saliency", target=[0, 1, 2, 0])
    expected = np.abs(W[[0, 1, 2, 0]].reshape(4, 1, 4, 4))
    np.testing.assert_allclose(ex.attributions, expected, atol=1e-6)


def test_one_pixel_occlusion_of_a_linear_model_is_w_times_x(linear_model):
    ex = onnxviz.explain(linear_model, X, "occlusion", target=1, window=(1,), stride=(1,))
    np.testing.assert_allclose(ex.attributions, W[1].reshape(1, 1, 4, 4) * X, atol=1e-5)


def test_occlusion_averages_overlapping_windows(linear_model):
    # 2x2 windows, stride 1: each pixel gets the mean drop of the windows covering it.
    ex = onnxviz.explain(linear_model, X[:1], "occlusion", target=0, window=(2,), stride=(1,))
    contrib = (W[0].reshape(4, 4) * X[0, 0]).astype(np.float64)
    total, count = np.zeros((4, 4)), np.zeros((4, 4))
    for r in range(3):
        for c in range(3):
            total[r : r + 2, c : c + 2] += contrib[r : r + 2, c : c + 2].sum()
            count[r : r + 2, c : c + 2] += 1
    np.testing.assert_allclose(ex.attributions[0, 0], total / count, atol=1e-5)


def test_top1_is_the_argmax_and_softmax_target_differentiates_probabilities():
    model = onnxviz.load(linear(W, B, softmax=True))
    ex = onnxviz.explain(model, X, "saliency", abs=False)
    logits = X.reshape(4, -1) @ W.T + B
    np.testing.assert_array_equal(ex.targets, logits.argmax(1))
    # the trailing Softmax is skipped by default: the gradient is the logit's, i.e. the weights
    np.testing.assert_allclose(ex.attributions, W[ex.targets].reshape(4, 1, 4, 4), atol=1e-6)
    ex = onnxviz.explain(model, X, "saliency", target="softmax:0", abs=False)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    expected = p[:, :1] * (W[0] - p @ W)  # d p0 / dx = p0 (w0 - sum_j p_j w_j)
    np.testing.assert_allclose(ex.attributions.reshape(4, -1), expected, atol=1e-6)


def test_gradcam_on_a_gap_network_is_the_class_activation_map():
    conv_w = RNG.standard_normal((5, 1, 3, 3)).astype(np.float32)
    fc_w = RNG.standard_normal((3, 5)).astype(np.float32)
    model = onnxviz.load(gap_net(conv_w, fc_w), normalize=False)
    x = RNG.standard_normal((2, 1, 6, 6)).astype(np.float32)
    ex = onnxviz.explain(model, x, "gradcam", target=1)
    assert ex.layer == "act"
    acts = model.ort.run(x, ("act",))[0]
    # d logit / d A_c(h, w) = fc_w[1, c] / (H W): the Grad-CAM weight is fc_w[1, c] / 36
    expected = np.maximum(np.einsum("c,nchw->nhw", fc_w[1] / 36.0, acts), 0)
    np.testing.assert_allclose(ex.raw, expected, atol=1e-5)
    np.testing.assert_allclose(ex.attributions, expected, atol=1e-5)  # 6x6 layer = 6x6 input: no resize


def test_fixed_batch_models_accept_any_batch():
    model = onnxviz.load(linear(W, B, batch=1))
    assert model.input.fixed_batch == 1
    for method in ("saliency", "occlusion"):
        batch = onnxviz.explain(model, X[:3], method, target=1).attributions
        single = np.concatenate([onnxviz.explain(model, X[i : i + 1], method, target=1).attributions
                                 for i in range(3)])
        np.testing.assert_allclose(batch, single, atol=1e-6)


def test_nearest_upsampling_of_guided_gradcam_is_torchs_nearest_mode():
    """Non-integer factors both ways (3 x 5 -> 10 x 13): every output pixel takes floor(i * h / H) as torch does."""
    torch = pytest.importorskip("torch")
    from onnxviz.methods.guided import upsample_nearest

    maps = RNG.random((2, 3, 5))
    theirs = torch.nn.functional.interpolate(torch.from_numpy(maps)[:, None], size=(10, 13), mode="nearest")[:, 0]
    np.testing.assert_array_equal(upsample_nearest(maps, 10, 13), theirs.numpy())


def test_guided_gradcam_is_guided_backprop_times_the_upsampled_gradcam_map():
    pytest.importorskip("torch")
    conv_w = RNG.standard_normal((5, 1, 3, 3)).astype(np.float32)
    fc_w = RNG.standard_normal((3, 5)).astype(np.float32)
    model = onnxviz.load(gap_net(conv_w, fc_w, size=(6, 8)), normalize=False)
    x = RNG.standard_normal((2, 1, 6, 8)).astype(np.float32)
    guided = onnxviz.explain(model, x, "guided_gradcam", target=2).attributions
    backprop = onnxviz.explain(model, x, "guided_backprop", target=2).attributions
    cam = onnxviz.explain(model, x, "gradcam", target=2).raw  # 6 x 8 at the layer: the same grid
    assert cam.max() > 0 and np.ptp(cam, axis=(1, 2)).min() > 0
    np.testing.assert_allclose(guided, backprop * cam[:, None], rtol=1e-5, atol=1e-6 * np.abs(backprop).max())
