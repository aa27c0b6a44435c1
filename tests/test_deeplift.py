"""DeepLIFT, DeepLIFT-SHAP and GradientSHAP (issue 22) against Captum on the same network, and DeepLIFT's own
oracle: with every nonlinearity rescaled, attributions sum to f(x) - f(reference) exactly. The network mixes ReLU,
max pooling, ELU, LeakyReLU, Sigmoid and Tanh, reads a non-square 20 x 28 input and ends in a flatten + dense head,
exported by the legacy exporter (dynamic batch) and by dynamo (fixed batch 1)."""

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


class MixedNet(nn.Module):
    """Every nonlinearity a separate module (Captum's DeepLift hooks modules, one use each). `adjacent`: the ReLU
    feeds the max pooling directly; otherwise a 1 x 1 convolution stands between them, because Captum's hooks
    read a module's output gradient before the next module's rule has replaced it (two rule modules in a row
    break its summation-to-delta: 15 % here), which our own oracle test covers instead."""

    def __init__(self, adjacent: bool = False):
        super().__init__()
        torch.manual_seed(5)
        self.c1, self.a1, self.p1 = nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)
        self.mix = nn.Identity() if adjacent else nn.Conv2d(6, 6, 1)
        self.c2, self.a2 = nn.Conv2d(6, 8, 3), nn.ELU()
        self.c3, self.a3 = nn.Conv2d(8, 8, 3, stride=2), nn.LeakyReLU(0.1)
        self.c4, self.a4 = nn.Conv2d(8, 8, 1), nn.Sigmoid()
        self.fc1, self.a5, self.fc2 = nn.Linear(8 * 3 * 5, 16), nn.Tanh(), nn.Linear(16, 5)
        with torch.no_grad():  # default initialization shrinks the signal layer by layer: scores of 1e-3
            for layer in (self.c1, self.c2, self.c3, self.c4, self.fc1, self.fc2):
                layer.weight *= 3.0

    def forward(self, x):
        x = self.p1(self.mix(self.a1(self.c1(x))))
        x = self.a4(self.c4(self.a3(self.c3(self.a2(self.c2(x))))))
        return self.fc2(self.a5(self.fc1(x.flatten(1))))


def _export(net, path, dynamo: bool) -> None:
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(net, (torch.rand(1, 3, H, W),), str(path), dynamo=True, opset_version=18,
                              input_names=["x"], output_names=["y"])
        else:
            torch.onnx.export(net, (torch.rand(1, 3, H, W),), str(path), dynamo=False, opset_version=17,
                              input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})


@pytest.fixture(scope="module")
def net():
    return MixedNet().eval()


@pytest.fixture(scope="module", params=["legacy", "dynamo"])
def model(request, net, tmp_path_factory):
    path = tmp_path_factory.mktemp("deeplift") / f"{request.param}.onnx"
    _export(net, path, request.param == "dynamo")
    return onnxviz.load(path, preprocessing="unit")


def _images(n: int = 2, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).random((n, 3, H, W)).astype(np.float32)
    x[:, :, :, : W // 3] *= 0.2  # not symmetric: a transposed map would differ
    return x


def _scale(a: np.ndarray) -> float:
    return float(np.abs(a).max())


@pytest.fixture
def captum_with_maxpool_fix(monkeypatch):
    """Captum 0.9's max-pool rule falls back to the first row's gradient where the input does not move (its issue
    #1276, fix in pull request #1847): patched here to the whole batch's, as the fix does."""
    from captum.attr._core import deep_lift

    def maxpool2d(module, inputs, outputs, grad_input, grad_output, eps=1e-10):
        rule = deep_lift.maxpool(module, torch.nn.functional.max_pool2d, torch.nn.functional.max_unpool2d, inputs,
                                 outputs, grad_input, grad_output, eps=eps)
        x, ref = inputs.chunk(2)
        return torch.where(torch.cat([x - ref] * 2).abs() < eps, grad_input, rule)

    monkeypatch.setitem(deep_lift.SUPPORTED_NON_LINEAR, nn.MaxPool2d, maxpool2d)


def test_deeplift_equals_captum(net, model, captum_with_maxpool_fix):
    x = _images()
    partly = x.copy()
    partly[:, :, :, W // 2:] = 0.5  # the left half equals the input: nonlinearities there do not move
    for baseline in (0.0, 0.5, partly):
        ours = onnxviz.explain(model, x, "deeplift", target=[1, 3], baselines=baseline, progress=False)
        given = torch.from_numpy(baseline) if isinstance(baseline, np.ndarray) else baseline
        expected = captum_attr.DeepLift(net).attribute(torch.from_numpy(x), baselines=given,
                                                       target=[1, 3]).detach().numpy()
        np.testing.assert_allclose(ours.attributions, expected, atol=1e-4 * _scale(expected))


@pytest.fixture(scope="module")
def adjacent(tmp_path_factory):
    net = MixedNet(adjacent=True).eval()
    path = tmp_path_factory.mktemp("deeplift") / "adjacent.onnx"
    _export(net, path, dynamo=False)
    return net, onnxviz.load(path, preprocessing="unit")


@pytest.mark.parametrize("which", ["separated", "adjacent"])
def test_deeplift_sums_to_the_score_difference(net, model, adjacent, which):
    if which == "adjacent":
        net, model = adjacent
    x = _images(seed=1)
    reference = np.random.default_rng(9).random((1, 3, H, W)).astype(np.float32)
    ours = onnxviz.explain(model, x, "deeplift", target=2, baselines=reference, progress=False)
    with torch.no_grad():
        gap = (net(torch.from_numpy(x)) - net(torch.from_numpy(reference)))[:, 2].numpy()
    np.testing.assert_allclose(ours.attributions.reshape(2, -1).sum(axis=1), gap, atol=1e-4 * np.abs(gap).max())
    assert np.abs(ours.extras["summation_to_delta_error"]).max() < 1e-4 * np.abs(gap).max()
    # not the gradient times the difference (what the rules replace): that one misses the sum
    grads = onnxviz.explain(model, x, "saliency", target=2, progress=False, abs=False).attributions
    plain = ((x - reference) * grads).reshape(2, -1).sum(axis=1)
    assert np.abs(plain - gap).max() > 10 * np.abs(ours.attributions.reshape(2, -1).sum(axis=1) - gap).max()


def test_deeplift_shap_equals_captum(net, model, captum_with_maxpool_fix):
    x = _images(n=1, seed=2)
    refs = np.random.default_rng(4).random((3, 3, H, W)).astype(np.float32)
    ours = onnxviz.explain(model, x, "deeplift_shap", target=4, baselines=refs, progress=False)
    expected = captum_attr.DeepLiftShap(net).attribute(torch.from_numpy(x), baselines=torch.from_numpy(refs),
                                                       target=4).detach().numpy()
    np.testing.assert_allclose(ours.attributions, expected, atol=1e-4 * _scale(expected))


def test_gradient_shap_equals_captum_on_the_same_draws(net, model, monkeypatch):
    from onnxviz.methods import gradient_shap

    x = _images(n=2, seed=3)
    refs = np.random.default_rng(6).random((4, 3, H, W)).astype(np.float32)
    n, stdevs = 7, 0.09
    batch = 3
    ours = onnxviz.explain(model, x, "gradient_shap", target=[0, 2], baselines=refs, n_samples=n, stdevs=stdevs,
                           batch_size=batch, progress=False)
    # replay our draws: per image its generator, references and alphas first, then the noise chunk by chunk
    from onnxviz.runner import Runner

    which, alphas, noise = [], [], []
    for sample in x:
        rng = Runner(model, batch_size=batch, seed=0).rng(sample)
        w, a = gradient_shap.draw(rng, n, len(refs))
        which.append(w)
        alphas.append(a)
        noise.append(rng.normal(0.0, stdevs, (n, 3, H, W)))
    monkeypatch.setattr(np.random, "choice", lambda k, size: np.concatenate(which))
    monkeypatch.setattr(np.random, "uniform", lambda low, high, size: np.concatenate(alphas))
    monkeypatch.setattr(torch, "normal", lambda mean, std: torch.from_numpy(np.concatenate(noise)).float())
    expected = captum_attr.GradientShap(net).attribute(torch.from_numpy(x), baselines=torch.from_numpy(refs),
                                                       n_samples=n, stdevs=stdevs, target=[0, 2]).detach().numpy()
    np.testing.assert_allclose(ours.attributions, expected, atol=1e-4 * _scale(expected))


def test_gradient_shap_never_sends_more_than_a_batch(model, monkeypatch):
    from onnxviz.context import Context

    sizes = []
    real = Context.grad

    def spy(self, xb, *args, **kwargs):
        sizes.append(len(xb))
        return real(self, xb, *args, **kwargs)

    monkeypatch.setattr(Context, "grad", spy)
    onnxviz.explain(model, _images(n=1), "gradient_shap", target=0, n_samples=50, batch_size=8, progress=False)
    assert sum(sizes) == 50 and max(sizes) == 8


@pytest.mark.parametrize(("options", "words"), [
    ({"baselines": "zeros"}, "zeros"),
    ({"eps": -1.0}, "eps"),
])
def test_deeplift_refuses_bad_options(model, options, words):
    with pytest.raises(onnxviz.OptionError, match=words):
        onnxviz.explain(model, _images(n=1), "deeplift", target=0, progress=False, **options)


@pytest.mark.parametrize(("options", "words"), [
    ({"n_samples": 0}, "n_samples"),
    ({"stdevs": -0.1}, "stdevs"),
    ({"baselines": np.zeros((2, 3, 5, 5), np.float32)}, r"\(K, 3, 20, 28\)"),
])
def test_gradient_shap_refuses_bad_options(model, options, words):
    with pytest.raises(onnxviz.OptionError, match=words):
        onnxviz.explain(model, _images(n=1), "gradient_shap", target=0, progress=False, **options)
