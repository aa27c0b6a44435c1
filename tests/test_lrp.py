"""LRP (issue 22) against Zennit on the same network with the same composite or rule, and LRP's own oracle:
without biases every rule conserves relevance, so the pixels' relevance sums to the score. The network reads a
non-square 24 x 32 input, keeps a BatchNormalization after a convolution in the dynamo export (merged into the
convolution as Zennit's canonizer merges it; the legacy exporter folds it), and ends in average pooling + a
two-layer dense head."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest

import onnxviz

torch = pytest.importorskip("torch")
pytest.importorskip("zennit")
import zennit.layer  # noqa: E402
from zennit import composites, rules  # noqa: E402
from zennit import types as ztypes  # noqa: E402
from zennit.canonizers import SequentialMergeBatchNorm  # noqa: E402

nn = torch.nn
H, W = 24, 32
MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def _net(bias: bool = True, batch_norm: bool = True) -> nn.Sequential:
    torch.manual_seed(11)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=bias), nn.BatchNorm2d(8) if batch_norm else nn.Identity(), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, bias=bias), nn.LeakyReLU(0.1), nn.MaxPool2d(2),
        nn.Conv2d(8, 12, 3, bias=bias), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(12 * 5 * 7, 16, bias=bias), nn.ReLU(), nn.Linear(16, 4, bias=bias))
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.BatchNorm2d):  # statistics that make the merge matter
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net.eval()


def _export(net, path, dynamo: bool, fold: bool = True) -> None:
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(net, (torch.rand(1, 3, H, W),), str(path), dynamo=True, opset_version=18,
                              input_names=["x"], output_names=["y"])
        else:
            torch.onnx.export(net, (torch.rand(1, 3, H, W),), str(path), dynamo=False, opset_version=17,
                              input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}},
                              do_constant_folding=fold)


@pytest.fixture(scope="module", params=["legacy", "dynamo", "unfolded"])
def exported(request, tmp_path_factory):
    """Both exporters fold the BatchNormalization into the convolution; unfolded keeps it, and our loader folds it
    (as Zennit's canonizer merges it)."""
    import onnx

    net = _net()
    path = tmp_path_factory.mktemp("lrp") / f"{request.param}.onnx"
    _export(net, path, request.param == "dynamo", fold=request.param != "unfolded")
    kept = any(n.op_type == "BatchNormalization" for n in onnx.load(str(path)).graph.node)
    assert kept == (request.param == "unfolded")
    return net, onnxviz.load(path, preprocessing="imagenet")


def _images(n: int = 2, seed: int = 0) -> np.ndarray:
    pixels = np.random.default_rng(seed).random((n, H, W, 3))
    pixels[:, :, : W // 3] *= 0.3  # not symmetric: a transposed map would differ
    return ((pixels - MEAN) / STD).transpose(0, 3, 1, 2).astype(np.float32)


def _bounds():
    low, high = (torch.tensor((v - MEAN) / STD, dtype=torch.float32).reshape(1, 3, 1, 1) for v in (0.0, 1.0))
    return low, high


def _zennit(net, composite, x: np.ndarray, targets) -> np.ndarray:
    xt = torch.from_numpy(x).requires_grad_()
    with composite.context(net) as modified:
        out = modified(xt)
        seed = torch.zeros_like(out)
        seed[torch.arange(len(x)), torch.as_tensor(targets)] = 1
        (relevance,) = torch.autograd.grad(out, xt, seed * out)
    return relevance.detach().numpy()


def _single(rule) -> composites.Composite:
    return composites.LayerMapComposite(layer_map=[*composites.layer_map_base(), (ztypes.Linear, rule)],
                                        canonizers=[SequentialMergeBatchNorm()])


def _composite(name: str):
    canon = [SequentialMergeBatchNorm()]
    if name == "epsilon_plus_flat":
        return composites.EpsilonPlusFlat(canonizers=canon)
    if name == "epsilon_gamma_box":
        low, high = _bounds()
        return composites.EpsilonGammaBox(low=low, high=high, canonizers=canon)
    return composites.EpsilonAlpha2Beta1(canonizers=canon)


def _close(ours: np.ndarray, expected: np.ndarray) -> None:
    np.testing.assert_allclose(ours, expected, atol=1e-4 * float(np.abs(expected).max()))


@pytest.mark.parametrize("composite", ["epsilon_plus_flat", "epsilon_gamma_box", "epsilon_alpha2_beta1"])
def test_composites_equal_zennit(exported, composite):
    net, model = exported
    x = _images()
    ours = onnxviz.explain(model, x, "lrp", target=[1, 2], composite=composite, progress=False)
    _close(ours.attributions, _zennit(net, _composite(composite), x, [1, 2]))


@pytest.mark.parametrize(("rule", "zennit_rule"), [
    ("epsilon", lambda: rules.Epsilon(epsilon=1e-6)),
    ("zplus", lambda: rules.ZPlus()),
    ("alpha2_beta1", lambda: rules.AlphaBeta(alpha=2, beta=1)),
    ("gamma", lambda: rules.Gamma(gamma=0.25)),
    ("flat", lambda: rules.Flat()),
])
def test_single_rules_equal_zennit(exported, rule, zennit_rule):
    net, model = exported
    x = _images(n=1, seed=1)
    ours = onnxviz.explain(model, x, "lrp", target=3, rule=rule, progress=False)
    _close(ours.attributions, _zennit(net, _single(zennit_rule()), x, [3]))


def _first_zbox(low, high) -> composites.Composite:
    return composites.SpecialFirstLayerMapComposite(
        layer_map=[*composites.layer_map_base(), (ztypes.Linear, rules.Epsilon())],
        first_map=[(ztypes.Convolution, rules.ZBox(low=low, high=high))], canonizers=[SequentialMergeBatchNorm()])


def test_zbox_bounds_default_to_the_preprocessing_and_can_be_given(exported):
    net, model = exported
    x = _images(n=1, seed=2)
    low, high = _bounds()
    expected = _zennit(net, _first_zbox(low, high), x, [0])
    _close(onnxviz.explain(model, x, "lrp", target=0, rule="epsilon", first_rule="zbox", progress=False).attributions,
           expected)
    given = onnxviz.explain(model, x, "lrp", target=0, rule="epsilon", first_rule="zbox", low=(-3.0, -2.5, -3.0),
                            high=(3.0, 3.0, 2.0), progress=False).attributions
    wide = _zennit(net, _first_zbox(torch.tensor([-3.0, -2.5, -3.0]).reshape(1, 3, 1, 1),
                                    torch.tensor([3.0, 3.0, 2.0]).reshape(1, 3, 1, 1)), x, [0])
    _close(given, wide)
    assert np.abs(given - expected).max() > 0.01 * np.abs(expected).max()


class Residual(nn.Module):
    """BatchNorm(h + branch(h)); with `zennit_sum` the sum is Zennit's Sum layer (its canonical form for a residual),
    which computes the same function: Zennit runs on that one, we on the export of the plain Add. The batch norm
    after the sum cannot be merged into a convolution: it passes relevance on (Zennit's rule for it)."""

    def __init__(self, zennit_sum: bool = False, gain: bool = False):
        super().__init__()
        torch.manual_seed(12)
        self.sum = zennit.layer.Sum() if zennit_sum else None
        self.gain = torch.linspace(0.5, 2.0, 6).reshape(1, 6, 1, 1) if gain else None
        self.stem = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1, bias=False), nn.ReLU())
        self.branch = nn.Sequential(nn.Conv2d(6, 6, 3, padding=1, bias=False), nn.ReLU())
        self.norm = nn.BatchNorm2d(6)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3, bias=False))
        with torch.no_grad():
            self.norm.running_var.uniform_(0.5, 2.0)
            self.norm.weight.uniform_(0.5, 1.5)

    def forward(self, x):
        h = self.stem(x)
        if self.gain is not None:  # a product with a constant (what a decomposed batch norm leaves): passes relevance
            h = h * self.gain
        merged = h + self.branch(h) if self.sum is None else self.sum(torch.stack([h, self.branch(h)], dim=-1))
        return self.head(self.norm(merged))


@pytest.mark.parametrize("composite", ["epsilon_plus_flat", "epsilon_gamma_box", "epsilon_alpha2_beta1"])
@pytest.mark.parametrize("which", ["sequential", "residual", "scaled"])
def test_relevance_sums_to_the_score_without_biases(tmp_path_factory, composite, which):
    net = _net(bias=False, batch_norm=False) if which == "sequential" else Residual(gain=which == "scaled").eval()
    path = tmp_path_factory.mktemp("lrp") / f"{which}.onnx"
    _export(net, path, dynamo=False)
    model = onnxviz.load(path, preprocessing="imagenet")
    x = _images(n=2, seed=3)
    ex = onnxviz.explain(model, x, "lrp", target=[0, 2], composite=composite, progress=False)
    with torch.no_grad():
        scores = net(torch.from_numpy(x))[[0, 1], [0, 2]].numpy()
    sums = ex.attributions.reshape(2, -1).sum(axis=1)
    if composite == "epsilon_gamma_box":  # the z-box rule conserves what it receives, measured from the box
        assert np.all(np.isfinite(sums))
    np.testing.assert_allclose(sums, scores, rtol=1e-3)
    np.testing.assert_allclose(ex.extras["conservation"], 1.0, atol=1e-3)
    if which == "scaled":  # Zennit cannot see a bare product, so it takes its gradient there
        return
    # the legacy exporter writes a dense layer without bias as a MatMul
    native = net if which == "sequential" else Residual(zennit_sum=True).eval()
    _close(ex.attributions, _zennit(native, _composite(composite), x, [0, 2]))


@pytest.mark.parametrize(("options", "words"), [
    ({"composite": "epsilon_plus"}, "epsilon_plus_flat"),
    ({"rule": "w_square"}, "zbox"),
    ({"first_rule": "z_box"}, "zbox"),
    ({"low": (0.0, 0.0, 0.0)}, "low and high together"),
    ({"epsilon": -1.0}, "epsilon"),
])
def test_bad_options_are_refused(exported, options, words):
    _, model = exported
    with pytest.raises(onnxviz.OptionError, match=words):
        onnxviz.explain(model, _images(n=1), "lrp", target=0, progress=False, **options)
