"""Layer and neuron conductance (issue 22) against Captum's LayerConductance and NeuronConductance on the same
network (non-square 20 x 28 input, flatten + dense head), and the oracle: a layer's conductance sums to
f(x) - f(baseline) up to the path's quadrature error."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest

import onnxviz

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")
nn = torch.nn
H, W = 20, 28


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    torch.manual_seed(31)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 10 * 14, 4)).eval()
    with torch.no_grad():
        for m in net:
            if hasattr(m, "weight"):
                m.weight *= 2.0
    path = tmp_path_factory.mktemp("conductance") / "net.onnx"
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.rand(1, 3, H, W),), str(path), dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    model = onnxviz.load(path, preprocessing="unit")
    layer = [layer.name for layer in model.layers if layer.op_type == "Relu"][1]
    return net, model, layer


def _images(n: int = 2) -> np.ndarray:
    x = np.random.default_rng(0).random((n, 3, H, W)).astype(np.float32)
    x[:, :, :, : W // 3] *= 0.2
    return x


@pytest.mark.parametrize("rule", ["gausslegendre", "riemann_right"])
def test_layer_conductance_equals_captum(pair, rule):
    net, model, layer = pair
    x = _images()
    ours = onnxviz.explain(model, x, "conductance", target=[1, 2], layer=layer, n_steps=12, method=rule,
                           baselines=0.1, batch_size=5, progress=False)  # 13 points: chunks split the differences
    expected = captum_attr.LayerConductance(net, net[3]).attribute(
        torch.from_numpy(x), baselines=0.1, target=[1, 2], n_steps=12, method=rule).detach().numpy()
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(ours.extras["layer_conductance"], expected, atol=1e-4 * scale)
    np.testing.assert_allclose(ours.raw, expected.sum(axis=1), atol=1e-4 * scale)


def test_layer_conductance_sums_to_the_score_change(pair):
    _, model, layer = pair
    ex = onnxviz.explain(model, _images(), "conductance", target=[0, 3], layer=layer, n_steps=200, progress=False)
    gap = ex.extras["layer_conductance"].reshape(2, -1).sum(axis=1) - np.asarray(ex.extras["completeness_error"])
    assert np.abs(ex.extras["completeness_error"]).max() < 0.01 * np.abs(gap).max()


def test_neuron_conductance_equals_captum(pair):
    net, model, layer = pair
    x = _images()
    ours = onnxviz.explain(model, x, "neuron_conductance", target=[2, 0], layer=layer, neuron=(5, 3, 17),
                           n_steps=10, baselines=0.1, batch_size=4, progress=False)
    expected = captum_attr.NeuronConductance(net, net[3]).attribute(
        torch.from_numpy(x), neuron_selector=(5, 3, 17), target=[2, 0], n_steps=10, baselines=0.1,
        method="gausslegendre").detach().numpy()  # Captum's default here is riemann_trapezoid
    np.testing.assert_allclose(ours.attributions, expected, atol=1e-4 * float(np.abs(expected).max()))


def test_a_neuron_outside_the_layer_is_refused(pair):
    _, model, layer = pair
    with pytest.raises(onnxviz.MethodError, match="8 x 20 x 28"):
        onnxviz.explain(model, _images(1), "neuron_conductance", target=0, layer=layer, neuron=(8, 0, 0),
                        progress=False)
