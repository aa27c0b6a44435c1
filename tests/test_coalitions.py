"""The coalition methods (issue 22: lime, kernel_shap, shapley_sampling, feature_ablation, sobol), onnxruntime only,
against exact answers and Captum on the same network: Shapley values by enumeration, Captum's FeatureAblation,
KernelShap and Lime fed the same coalitions, an additive model whose Shapley and Sobol values are known, and Sobol
written out on the same quasi-Monte Carlo design. Network: a Flatten-head CNN on a non-square 40 x 56 input."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest

import onnxviz

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")
from models.exports import FlattenHead  # noqa: E402

H, W = 40, 56
LINEAR_W = np.random.default_rng(3).standard_normal((3, 16)).astype(np.float32)
SAME = 1e-4  # onnxruntime vs the native module in float32, relative to the largest attribution


@pytest.fixture(scope="module")
def linear_model():
    from tests.tiny_models import linear

    return onnxviz.load(linear(LINEAR_W, np.zeros(3, np.float32)))


@pytest.fixture(scope="module")
def net_and_model(tmp_path_factory):
    import contextlib
    import io
    import warnings

    net = FlattenHead(H, W, seed=7).eval()
    path = tmp_path_factory.mktemp("coalitions") / "flat.onnx"
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.rand(1, 3, H, W),), str(path), dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    return net, onnxviz.load(path, preprocessing="unit")


def _image(seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).random((1, 3, H, W)).astype(np.float32)
    x[0, :, :, : W // 3] *= 0.3  # asymmetric: a transposed segmentation would not pass
    return x


def _labels(granularity: str, x: np.ndarray) -> np.ndarray:
    from onnxviz.io import read_image
    from onnxviz.segments import group_labels

    return group_labels(x[0], granularity, "NCHW", read_image)


def _native(net, target: int):
    def forward(batch):
        with torch.no_grad():
            return net(torch.as_tensor(batch))[:, target]
    return forward


def _exact_shapley(value, groups: int) -> np.ndarray:
    """phi_i = sum over S without i of |S|! (M - |S| - 1)! / M! (v(S + i) - v(S))."""
    phi = np.zeros(groups)
    for i in range(groups):
        others = [g for g in range(groups) if g != i]
        for k in range(groups):
            for chosen in combinations(others, k):
                weight = math.factorial(k) * math.factorial(groups - k - 1) / math.factorial(groups)
                phi[i] += weight * (value({*chosen, i}) - value(set(chosen)))
    return phi


def _coalition_value(net, x: np.ndarray, labels: np.ndarray, target: int):
    def value(present: set) -> float:
        keep = np.isin(labels, sorted(present)).astype(np.float32)
        with torch.no_grad():
            return float(net(torch.from_numpy(x * keep))[0, target])
    return value


def test_feature_ablation_equals_captum(net_and_model):
    net, model = net_and_model
    x = _image()
    for granularity in ("patch:8", "superpixel:12"):
        labels = _labels(granularity, x)
        ours = onnxviz.explain(model, x, "feature_ablation", target=2, granularity=granularity,
                               progress=False).attributions
        theirs = captum_attr.FeatureAblation(_native(net, 2)).attribute(
            torch.from_numpy(x), baselines=0.0, feature_mask=torch.from_numpy(labels[None])).numpy()
        np.testing.assert_allclose(ours, theirs, atol=SAME * np.abs(theirs).max(), err_msg=granularity)


def test_kernel_shap_enumerates_and_is_exact_when_the_budget_allows(net_and_model):
    """patch:20 cuts 40 x 56 into 2 x 3 segments: 64 coalitions fit a budget of 64, and the kernel-weighted fit is
    the Shapley values (up to the 1e6 weight standing for the endpoints' infinite one)."""
    net, model = net_and_model
    x = _image()
    labels = _labels("patch:20", x)
    assert labels.max() == 5
    exact = _exact_shapley(_coalition_value(net, x, labels, 1), 6)
    ours = onnxviz.explain(model, x, "kernel_shap", target=1, granularity="patch:20", n_samples=64,
                           progress=False).attributions[0]
    np.testing.assert_allclose(ours, exact[labels], rtol=1e-3, atol=1e-4 * np.abs(exact).max())
    assert abs(exact.sum() - (_coalition_value(net, x, labels, 1)(set(range(6))) - _coalition_value(
        net, x, labels, 1)(set()))) < 1e-4  # efficiency: the oracle itself is right


def test_kernel_shap_equals_captum_on_the_same_coalitions(net_and_model, monkeypatch):
    """Captum's KernelShap fed the coalitions ours drew (its generator replaced): the same least-squares fit."""
    from captum.attr._core.kernel_shap import KernelShap

    from onnxviz.methods.kernel_shap import sampled

    net, model = net_and_model
    x = _image(1)
    labels = _labels("patch:10", x)  # 4 x 6 = 24 segments: sampled
    ours = onnxviz.explain(model, x, "kernel_shap", target=0, granularity="patch:10", n_samples=120,
                           baselines="mean", progress=False)
    from onnxviz.runner import Runner

    rows = sampled(Runner(model, seed=0).rng(x[0]), 120, 24)

    def generator(self, original_inp, **kwargs):
        for row in rows:
            yield torch.from_numpy(row[None].astype(np.int64))

    monkeypatch.setattr(KernelShap, "kernel_shap_perturb_generator", generator)
    mean = torch.from_numpy(x).mean(dim=(2, 3), keepdim=True).expand(x.shape).contiguous()
    theirs = KernelShap(_native(net, 0)).attribute(torch.from_numpy(x), baselines=mean, n_samples=120,
                                                   feature_mask=torch.from_numpy(labels[None])).numpy()
    np.testing.assert_allclose(ours.attributions, theirs, atol=1e-3 * np.abs(theirs).max())


@pytest.mark.parametrize(("surrogate", "reference", "baseline"),
                         [("lasso", "SkLearnLasso", 0.0), ("ridge", "SkLearnRidge", 0.3)])
def test_lime_equals_captum_on_the_same_coalitions(net_and_model, surrogate, reference, baseline):
    """Captum's Lime with its default similarity (exp kernel of the input's cosine distance, width 1) and the same
    surrogate, fed our coalitions through its perturb_func: the same weighted fit."""
    from captum._utils.models.linear_model import SkLearnLasso, SkLearnRidge

    from onnxviz.methods.lime import coalitions
    from onnxviz.runner import Runner

    net, model = net_and_model
    x = _image(2)
    labels = _labels("superpixel:16", x)
    groups = int(labels.max()) + 1
    alpha = {"lasso": 1e-4, "ridge": 1.0}[surrogate]  # this net's scores span ~0.1
    ours = onnxviz.explain(model, x, "lime", target=3, granularity="superpixel:16", n_samples=150,
                           surrogate=surrogate, alpha=alpha, baselines=baseline, progress=False).attributions
    rows = iter(coalitions(Runner(model, seed=0).rng(x[0]), 150, groups, first_all=False))
    model_class = {"SkLearnLasso": SkLearnLasso, "SkLearnRidge": SkLearnRidge}[reference]
    lime = captum_attr.Lime(_native(net, 3), interpretable_model=model_class(alpha=alpha),
                            perturb_func=lambda original, **kw: torch.from_numpy(next(rows)[None].astype(np.int64)))
    theirs = lime.attribute(torch.from_numpy(x), baselines=baseline, n_samples=150,
                            feature_mask=torch.from_numpy(labels[None])).numpy()
    scale = np.abs(theirs).max()
    assert scale > 0
    np.testing.assert_allclose(ours, theirs, atol=2e-3 * scale)  # the lasso: coordinate descent to 1e-10


def test_shapley_values_of_an_additive_model_are_its_terms(linear_model):
    """On y = w . x every order gives every segment the same marginal contribution: w . (x - baseline) over the
    segment, exactly, as sampling, KernelSHAP and feature ablation all must."""
    weights = LINEAR_W
    x = np.random.default_rng(4).standard_normal((1, 1, 4, 4)).astype(np.float32)
    labels = _labels_for(linear_model, x)
    expected = np.bincount(labels.ravel(), (weights[1].reshape(x.shape[1:]) * x[0]).ravel())
    for method, options in (("shapley_sampling", {"n_samples": 3}), ("kernel_shap", {"n_samples": 64}),
                            ("feature_ablation", {})):
        got = onnxviz.explain(linear_model, x, method, target=1, granularity="patch:2", progress=False,
                              **options).attributions[0]
        np.testing.assert_allclose(got, expected[labels], rtol=1e-4, atol=1e-5, err_msg=method)


def _labels_for(model, x):
    from onnxviz.segments import group_labels

    return group_labels(x[0], "patch:2", model.input.layout)


def test_shapley_sampling_approaches_the_exact_values(net_and_model):
    net, model = net_and_model
    x = _image(3)
    labels = _labels("patch:20", x)
    exact = _exact_shapley(_coalition_value(net, x, labels, 4), 6)
    errors = []
    for n in (4, 64):
        got = onnxviz.explain(model, x, "shapley_sampling", target=4, granularity="patch:20", n_samples=n,
                              progress=False).attributions[0]
        per_segment = np.array([got[labels == g][0] for g in range(6)])  # every pixel of a segment shares it
        np.testing.assert_array_equal(got, per_segment[labels])
        errors.append(np.abs(per_segment - exact).max())
    assert errors[1] < errors[0] and errors[1] < 0.1 * np.abs(exact).max(), (errors, exact)


def test_sobol_equals_its_definition_and_finds_an_additive_models_shares(linear_model):
    """On y = sum_c a_c mean(x over cell c) with x = 1, masks m: y = sum_c a_c m_c, so the total index of cell c
    is a_c^2 / sum a^2 (uniform m); and the estimate is Jansen's formula on Saltelli's design, written out here."""
    from scipy.stats import qmc

    from onnxviz.runner import Runner

    weights = LINEAR_W
    x = np.ones((1, 1, 4, 4), np.float32)
    ex = onnxviz.explain(linear_model, x, "sobol", target=2, grid=2, n_design=256, progress=False)
    a = weights[2].reshape(4, 4).reshape(2, 2, 2, 2).sum(axis=(1, 3))  # each 2 x 2 cell's weight
    shares = a**2 / (a**2).sum()
    np.testing.assert_allclose(ex.raw[0], shares, atol=0.06)
    points = qmc.Sobol(8, scramble=True, seed=Runner(linear_model, seed=0).rng(x[0])).random(256)
    first, second = points[:, :4], points[:, 4:]
    value = lambda masks: masks @ a.ravel()  # noqa: E731  (y of the additive model under cell masks)
    fa, fb = value(first), value(second)
    var = np.var(np.concatenate([fa, fb]))
    total = []
    for i in range(4):
        mixed = first.copy()
        mixed[:, i] = second[:, i]
        total.append(np.mean((fa - value(mixed)) ** 2) / 2 / var)
    np.testing.assert_allclose(ex.raw[0].ravel(), total, rtol=1e-4)


def test_coalition_options_are_checked(digits_model):
    model = digits_model
    for method, options, message in (("lime", {"granularity": "pixel"}, "granularity must be patch:K"),
                                     ("kernel_shap", {"n_samples": 2}, "at least 3"),
                                     ("sobol", {"n_design": 24}, "power of 2"),
                                     ("lime", {"kernel_width": 0.0}, "kernel_width must be positive"),
                                     ("shapley_sampling", {"baselines": "segmentz"}, "one of mean, blur, uniform, "
                                                                                     "segments, or an image file"),
                                     ("sobol", {"baselines": "segments"}, "one of mean, blur, uniform, or an")):
        with pytest.raises(onnxviz.OptionError, match=message):
            onnxviz.Explainer(model, method, **options)


def test_lime_preset_equals_the_lime_package(net_and_model):
    """The lime package's LimeImageExplainer (absent segments their mean colour, its kernel of the coalition's
    cosine distance, Ridge on every segment), its random draw replaced by our coalitions: the same coefficients."""
    lime_image = pytest.importorskip("lime.lime_image")

    from onnxviz.methods.lime import coalitions
    from onnxviz.runner import Runner

    net, model = net_and_model
    x = _image(5)
    labels = _labels("superpixel:20", x)
    groups = int(labels.max()) + 1
    rows = coalitions(Runner(model, seed=0).rng(x[0]), 300, groups, first_all=True)

    class Replayed(np.random.RandomState):
        def randint(self, low, high=None, size=None, dtype=int):
            return rows.ravel().copy() if size == rows.size else super().randint(low, high, size, dtype)

    def classify(images):  # HWC batches, as the package passes them
        with torch.no_grad():
            return net(torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2), np.float32))).numpy()

    explainer = lime_image.LimeImageExplainer(random_state=Replayed(0))
    found = explainer.explain_instance(x[0].transpose(1, 2, 0).astype(np.float64), classify, labels=(2,),
                                       top_labels=None, num_samples=300, segmentation_fn=lambda image: labels[0],
                                       random_seed=0, batch_size=64)
    theirs = np.zeros(groups)
    for segment, weight in found.local_exp[2]:
        theirs[segment] = weight
    ours = onnxviz.explain(model, x, "lime", target=2, granularity="superpixel:20", n_samples=300, preset="lime",
                           progress=False).attributions[0]
    assert np.abs(theirs).max() > 0
    np.testing.assert_allclose(ours, theirs[labels], atol=1e-4 * np.abs(theirs).max())


def test_shapley_sampling_equals_captum_on_the_same_orders(net_and_model):
    """Captum's ShapleyValueSampling walking the orders ours drew, from a non-zero baseline."""
    from onnxviz.runner import Runner

    net, model = net_and_model
    x = _image(6)
    labels = _labels("superpixel:12", x)
    groups = int(labels.max()) + 1
    ours = onnxviz.explain(model, x, "shapley_sampling", target=1, granularity="superpixel:12", n_samples=5,
                           baselines=0.5, progress=False).attributions
    rng = Runner(model, seed=0).rng(x[0])
    orders = [rng.permutation(groups).tolist() for _ in range(5)]
    sampling = captum_attr.ShapleyValueSampling(_native(net, 1))
    sampling.permutation_generator = lambda features, samples: iter(orders)
    theirs = sampling.attribute(torch.from_numpy(x), baselines=0.5, n_samples=5,
                                feature_mask=torch.from_numpy(labels[None])).numpy()
    np.testing.assert_allclose(ours, theirs, atol=SAME * np.abs(theirs).max())


def test_kernel_shap_draws_coalition_sizes_by_the_shapley_kernel():
    """k segments with probability proportional to (M - 1) / (k (M - k)), the segments uniform among the M."""
    from onnxviz.methods.kernel_shap import sampled

    groups = 9
    rows = sampled(np.random.default_rng(0), 40_002, groups)
    assert rows[0].all() and not rows[1].any()
    sizes = np.bincount(rows[2:].sum(axis=1), minlength=groups + 1)[1:groups] / 40_000
    k = np.arange(1, groups)
    expected = (1 / (k * (groups - k))) / (1 / (k * (groups - k))).sum()
    np.testing.assert_allclose(sizes, expected, atol=0.01)
    np.testing.assert_allclose(rows[2:].mean(axis=0), rows[2:].mean(), atol=0.01)  # no segment favoured


def test_kernel_shap_approaches_the_exact_values_as_samples_grow(net_and_model, tmp_path):
    """8 segments from a label image (256 coalitions): the error to the enumerated Shapley values shrinks with the
    budget, over four seeds each, and vanishes when every coalition fits."""
    from PIL import Image

    net, model = net_and_model
    x = _image(7)
    plane = (np.arange(H)[:, None] * 2 // H) * 4 + np.arange(W)[None, :] * 4 // W  # 2 x 4 blocks, labels 0..7
    Image.fromarray((plane * 30).astype(np.uint8)).save(tmp_path / "segments.png")
    granularity = f"mask:{tmp_path / 'segments.png'}"
    labels = np.broadcast_to(plane, x.shape[1:])
    np.testing.assert_array_equal(_labels(granularity, x), labels)
    exact = _exact_shapley(_coalition_value(net, x, labels, 0), 8)
    errors = {}
    for budget in (24, 80, 250, 256):
        worst = 0.0
        for seed in range(4):
            got = onnxviz.explain(model, x, "kernel_shap", target=0, granularity=granularity, n_samples=budget,
                                  seed=seed, progress=False).attributions[0]
            worst = max(worst, np.abs(got[0][np.arange(H)[:, None], np.arange(W)] - exact[plane]).max())
        errors[budget] = worst / np.abs(exact).max()
    print("kernel_shap relative error by budget:", {k: round(v, 4) for k, v in errors.items()})
    assert errors[24] > errors[80] > errors[250] and errors[256] < 1e-3, errors


def test_coalition_methods_run_without_torch():
    from tests.test_bad_input import _without_torch

    code = ("import onnxviz; from onnxviz.demo import demo_model_path, demo_images; "
            "m = onnxviz.load(demo_model_path()); "
            "print([onnxviz.explain(m, demo_images()[:1], name, granularity='patch:8', n_samples=8, progress=False)"
            ".attributions.shape for name in ('lime', 'kernel_shap', 'shapley_sampling')], "
            "onnxviz.explain(m, demo_images()[:1], 'feature_ablation', granularity='patch:8').attributions.shape, "
            "onnxviz.explain(m, demo_images()[:1], 'sobol', grid=4, n_design=8).raw.shape)")
    done = _without_torch(code)
    assert done.returncode == 0, done.stderr
    assert "[(1, 1, 32, 32), (1, 1, 32, 32), (1, 1, 32, 32)] (1, 1, 32, 32) (1, 4, 4)" in done.stdout
