"""Forward-only methods and gradient estimates (onnxruntime alone): oracles on hand-built graphs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

import onnxviz
from onnxviz.cli import cli
from onnxviz.estimate import Estimator, estimate_gradient
from onnxviz.segments import group_labels, superpixels
from tests.tiny_models import linear

RNG = np.random.default_rng(3)
W = RNG.standard_normal((3, 16)).astype(np.float32)
X = RNG.standard_normal((2, 1, 4, 4)).astype(np.float32)


@pytest.fixture(scope="module")
def linear_model():
    return onnxviz.load(linear(W, np.zeros(3, np.float32)))


def test_finite_differences_of_a_linear_model(linear_model):
    ex = onnxviz.explain(linear_model, X, "finite_difference", target=1)
    np.testing.assert_allclose(ex.attributions, np.broadcast_to(W[1].reshape(1, 1, 4, 4), X.shape), atol=1e-3)
    patches = onnxviz.explain(linear_model, X, "finite_difference", target=1, granularity="patch:2").attributions
    mean_w = W[1].reshape(2, 2, 2, 2).mean(axis=(1, 3))  # mean weight of each 2x2 patch
    np.testing.assert_allclose(patches[0, 0], np.kron(mean_w, np.ones((2, 2))), atol=1e-3)


def test_finite_differences_agree_with_the_analytic_gradient(digits_model, digits_batch):
    fd = onnxviz.explain(digits_model, digits_batch, "finite_difference").attributions
    exact = onnxviz.explain(digits_model, digits_batch, "saliency", abs=False).attributions
    for a, b in zip(fd, exact, strict=True):
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] >= 0.95


def test_superpixels_group_the_image():
    image = np.zeros((24, 24, 3), np.float32)
    image[:, 12:] = 1.0  # two flat halves
    labels = superpixels(image, 8)
    assert 4 <= labels.max() + 1 <= 12
    assert not np.intersect1d(labels[:, :12], labels[:, 12:]).size  # no segment straddles the edge
    grouped = group_labels(np.zeros((3, 24, 24), np.float32), "superpixel:8", "NCHW")
    assert grouped.shape == (3, 24, 24) and (grouped[0] == grouped[2]).all()


def test_nes_and_spsa_converge_to_the_gradient(digits_model, digits_batch):
    exact = onnxviz.explain(digits_model, digits_batch[:1], "saliency", abs=False).attributions[0]
    for kind in ("nes", "spsa"):
        errors = []
        for queries in (20, 200, 2000):
            est = onnxviz.explain(digits_model, digits_batch[:1], "saliency", abs=False,
                                  gradient=Estimator(kind, queries, cells=1)).attributions[0]
            errors.append(np.linalg.norm(est - exact) / np.linalg.norm(exact))
        assert errors[0] > errors[1] > errors[2], (kind, errors)


def _cell_means(grad: np.ndarray, side: int) -> np.ndarray:
    """(C, H, W) -> each value replaced by the mean over its side x side cell (edge cells smaller)."""
    out = np.empty_like(grad)
    for y in range(0, grad.shape[1], side):
        for x in range(0, grad.shape[2], side):
            cell = grad[:, y : y + side, x : x + side]
            out[:, y : y + side, x : x + side] = cell.mean(axis=(1, 2), keepdims=True)
    return out


@pytest.mark.parametrize("kind", ["nes", "spsa"])
def test_estimates_on_cells_reach_the_cosine_they_announce(digits_model, digits_batch, kind):
    """With cells, the estimate is of the gradient averaged over each cell (exactly: its expectation), and its cosine
    with that average is what the description announces (sqrt(m / (m + d +- 1)), d cells, m probe pairs), within the
    spread of a random estimate; per pixel at the same budget it is far lower (the map would be noise)."""
    from onnxviz.estimate import expected_cosine

    exact = onnxviz.explain(digits_model, digits_batch[:4], "saliency", abs=False, progress=False).attributions
    estimator = Estimator(kind, 400, cells=4)
    ex = onnxviz.explain(digits_model, digits_batch[:4], "saliency", abs=False, gradient=estimator, progress=False)
    announced = expected_cosine(estimator, (1, 32, 32), (1, 2), 4)
    assert f"4 x 4 px cells, expected cosine {announced:.2f} with the cell-averaged gradient" in ex.extras["gradient"]
    cosines, scales = [], []
    for est, grad in zip(ex.attributions, exact, strict=True):
        target = _cell_means(grad, 4)
        cosines.append(float((est * target).sum() / (np.linalg.norm(est) * np.linalg.norm(target))))
        scales.append(float((est * target).sum() / (target * target).sum()))  # 1 on average: unbiased
        assert np.allclose(est, _cell_means(est, 4), atol=1e-6)  # constant over each cell
    assert abs(np.mean(cosines) - announced) < 0.1, (cosines, announced)
    assert abs(np.mean(scales) - 1) < 0.25, scales  # a sum over the cell instead of its mean would be 16x
    per_pixel = expected_cosine(estimator, (1, 32, 32), (1, 2), 1)
    assert per_pixel < 0.6 * announced
    assert Estimator(kind, 400).cell((1, 32, 32), (1, 2)) == 2  # auto: 1024 values give 0.40 at 400 queries; 256, 0.66
    assert Estimator(kind, 200).cell((3, 224, 224), (1, 2)) == {"nes": 25, "spsa": 23}[kind]  # a 224 x 224 photo
    flagged = Estimator(kind, 200, cells=1).describe((3, 224, 224), (1, 2))
    assert "expected cosine 0.03" in flagged and "LOW: more noise than gradient" in flagged


def test_estimated_queries_are_counted_exactly(linear_model, monkeypatch):
    calls = []
    real = linear_model.ort.run
    monkeypatch.setattr(linear_model.ort, "run", lambda x, names: calls.append(len(x)) or real(x, names))
    onnxviz.explain(linear_model, X[:1], "saliency", gradient=Estimator("nes", 40), batch_size=1000)
    assert sum(calls) == 1 + 40  # the clean forward, then exactly the budget


def _mish_model() -> onnx.ModelProto:
    """A differentiable graph onnx2torch cannot convert (Mish)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])
    nodes = [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Gemm", ["f", "w1"], ["h"], transB=1),
             helper.make_node("Mish", ["h"], ["m"]), helper.make_node("Gemm", ["m", "w2"], ["y"], transB=1)]
    inits = [numpy_helper.from_array(RNG.standard_normal((8, 16)).astype(np.float32), "w1"),
             numpy_helper.from_array(RNG.standard_normal((3, 8)).astype(np.float32), "w2")]
    return helper.make_model(helper.make_graph(nodes, "mish", [x], [y], inits),
                             opset_imports=[helper.make_opsetid("", 18)], ir_version=8)


def test_unconvertible_graphs_fall_back_to_estimated_gradients(tmp_path):
    model = onnxviz.load(_mish_model())
    with pytest.warns(UserWarning, match="Falling back to an estimated gradient"):
        ex = onnxviz.explain(model, X, "integrated_gradients", n_steps=4)
    assert ex.backend == "onnxruntime (estimated gradient)" and "NES" in ex.extras["gradient"]
    with pytest.raises(onnxviz.ConversionError, match="Mish"):
        onnxviz.explain(model, X, "saliency", gradient="exact")
    with pytest.raises(onnxviz.ConversionError):  # guided backprop needs torch: no estimate can stand in
        onnxviz.explain(model, X, "guided_backprop")
    with pytest.raises(onnxviz.MethodError, match="cannot use estimated gradients"):
        onnxviz.explain(model, X, "guided_backprop", gradient="estimate")
    path = tmp_path / "mish.onnx"
    onnx.save(_mish_model(), str(path))
    image = tmp_path / "x.png"
    import cv2

    cv2.imwrite(str(image), (RNG.random((4, 4)) * 255).astype(np.uint8))
    result = CliRunner().invoke(cli, ["explain", str(path), str(image), "-m", "saliency", "--layout", "NCHW",
                                      "--out", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 0, result.output
    assert "estimated gradient" in result.stderr


def test_parity_off_falls_back_too(digits_batch):
    from onnxviz.demo import demo_model_path

    model = onnxviz.load(demo_model_path(), parity_tolerance=1e-12)
    with pytest.warns(UserWarning, match="Falling back"):
        ex = onnxviz.explain(model, digits_batch[:1], "saliency")
    assert ex.backend == "onnxruntime (estimated gradient)"


def _region_model() -> onnx.ModelProto:
    """score = sum of the top-left 4x4 quadrant of an 8x8 image: the model depends on that region only."""
    weight = np.zeros((2, 1, 8, 8), np.float32)
    weight[0, 0, :4, :4] = 1.0
    weight[1, 0, 4:, 4:] = 1.0
    return linear(weight.reshape(2, 64), np.zeros(2, np.float32), shape=(1, 8, 8))


def test_rise_and_occlusion_find_the_region_the_model_reads():
    model = onnxviz.load(_region_model())
    x = np.ones((1, 1, 8, 8), np.float32)
    rise = onnxviz.explain(model, x, "rise", target=0, n_masks=2000, grid=4).attributions[0]
    region = np.zeros((8, 8), bool)
    region[:4, :4] = True
    assert rise[region].min() > rise[~region].max()  # RISE adds a constant E[f]; the order is what matters
    occ = onnxviz.explain(model, x, "occlusion", target=0, window=(2,), stride=(2,)).attributions[0, 0]
    assert (occ[:4, :4] > 0).all() and (occ[4:, :] == 0).all() and (occ[:, 4:] == 0).all()


def test_interrupted_runs_leave_no_files(tmp_path, monkeypatch):
    from onnxviz.demo import demo_images, demo_model_path
    from onnxviz.methods.occlusion import Occlusion

    def interrupted(self, ctx, x, opts):
        raise KeyboardInterrupt

    monkeypatch.setattr(Occlusion, "explain", interrupted)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["explain", str(demo_model_path()), str(demo_images()[0]), "-m", "gradcam",
                                      "-m", "occlusion", "--out", str(out)])
    assert result.exit_code != 0
    assert not out.exists() or not any(out.iterdir())


def test_noise_robustness(tmp_path, digits_model):
    from onnxviz.demo import demo_images
    from onnxviz.robustness import NOISES, noise_robustness

    result = noise_robustness(digits_model, demo_images(), labels=[0, 3, 5, 8], levels=4)
    assert len(result.rows) == 4 * len(NOISES)
    clean = onnxviz.explain(digits_model, demo_images(), "occlusion", target="softmax:top1", window=(32,))
    zero_levels = [r for r in result.rows if r[1] == 0]
    for _, _, confidence, accuracy in zero_levels:
        assert confidence == pytest.approx(float(clean.scores.mean()), rel=1e-5)
        assert accuracy == pytest.approx(float((clean.predictions == [0, 3, 5, 8]).mean()))
    assert all(0 <= r[2] <= 1 and 0 <= r[3] <= 1 for r in result.rows)
    gaussian = [r[2] for r in result.rows if r[0] == "gaussian"]
    assert gaussian[-1] < gaussian[0]
    written = result.save(tmp_path)
    assert (tmp_path / "robustness.csv").read_text().count("\n") == 1 + len(result.rows)
    assert written[1].stat().st_size > 5_000


@pytest.mark.parametrize("name", ["occlusion", "rise", "finite_difference", "scorecam", "ablationcam", "reciprocam",
                                  "eigencam", "guided_gradcam", "integrated_gradients", "smoothgrad", "cam", "gradcam"])
def test_methods_on_an_nhwc_model_keep_the_contract(build_reference, photos, name):
    from onnxviz.testing import check_method

    model = onnxviz.load(build_reference("tiny_nhwc").path)
    assert model.input.layout == "NHWC"
    x = onnxviz.load_image(photos, model)
    options = {"rise": {"n_masks": 200}, "occlusion": {"window": (4,), "stride": (2,)},
               "finite_difference": {"granularity": "patch:4"}}.get(name, {})
    report = check_method(name, model=model, x=x, **options)
    assert report["shape"][:1] == (3,)


def test_rise_maps_are_drawn_from_min_to_max(digits_model, digits_batch):
    ex = onnxviz.explain(digits_model, digits_batch[:1], "rise", n_masks=100)
    assert not ex.signed and ex.extras["display"] == "unsigned"
    norm = ex.normalized()
    assert norm.min() == 0.0 and norm.max() == 1.0


@pytest.mark.parametrize(("kind", "excess"), [("nes", 1), ("spsa", -1)])
def test_estimated_gradients_have_the_error_theory_gives(linear_model, kind, excess):
    """On f(x) = w.x the estimate is (1/m) sum u u^T w over m = queries / 2 probe pairs: its relative RMS error is
    sqrt((d + 1) / m) for Gaussian (NES) and sqrt((d - 1) / m) for Rademacher (SPSA) directions. A factor-2 estimate
    (error 1) or a flipped sign (error 2) is far outside the band."""
    d, queries = 16, 2000
    expected = np.sqrt((d + excess) / (queries // 2))
    est = onnxviz.explain(linear_model, X, "saliency", abs=False, target=1, gradient=Estimator(kind, queries),
                          progress=False).attributions
    for sample in est:
        error = np.linalg.norm(sample.ravel() - W[1]) / np.linalg.norm(W[1])
        assert 0.5 * expected < error < 1.6 * expected, (kind, error, expected)


def test_finite_differences_match_the_analytic_gradient_of_a_smooth_model():
    """y = W2 tanh(W1 x): the gradient is W2 diag(1 - tanh^2(W1 x)) W1, and central differences of step h reach it
    to O(h^2)."""
    rng = np.random.default_rng(5)
    w1, w2 = rng.standard_normal((8, 16)).astype(np.float32), rng.standard_normal((3, 8)).astype(np.float32)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])
    nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=1), helper.make_node("Gemm", ["f", "W1"], ["z"], transB=1),
             helper.make_node("Tanh", ["z"], ["h"]), helper.make_node("Gemm", ["h", "W2"], ["y"], transB=1)]
    proto = helper.make_model(helper.make_graph(nodes, "smooth", [x], [y], [numpy_helper.from_array(w1, "W1"),
                                                                           numpy_helper.from_array(w2, "W2")]),
                              opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    model = onnxviz.load(proto)
    batch = (0.3 * rng.standard_normal((2, 1, 4, 4))).astype(np.float32)
    fd = onnxviz.explain(model, batch, "finite_difference", target=2, progress=False).attributions
    for sample, got in zip(batch, fd, strict=True):
        slope = 1 - np.tanh(w1 @ sample.ravel()) ** 2
        analytic = (w2[2] * slope) @ w1
        np.testing.assert_allclose(got.ravel(), analytic, atol=1e-3)


def test_spsa_probes_are_rademacher_and_nes_probes_gaussian():
    """One +/- pair on a linear score w . x: the estimate is (w . u) u, so SPSA's (u in {-1, 1}^d) has every
    component of one magnitude, NES's (Gaussian u) does not; both come back float32 in the sample's shape."""
    from onnxviz.errors import OptionError

    w = np.random.default_rng(0).standard_normal((3, 5)).ravel()
    sample = np.zeros((3, 5), np.float32)

    def score(batch):
        return batch.reshape(len(batch), -1) @ w

    spsa = estimate_gradient(sample, score, Estimator("spsa", queries=2), np.random.default_rng(1))
    nes = estimate_gradient(sample, score, Estimator("nes", queries=2), np.random.default_rng(1))
    assert spsa.shape == nes.shape == (3, 5) and spsa.dtype == nes.dtype == np.float32
    np.testing.assert_allclose(np.abs(spsa), np.abs(spsa).flat[0], rtol=1e-4)
    assert np.ptp(np.abs(nes)) > 0.1 * np.abs(nes).max()
    with pytest.raises(OptionError, match="must be nes or spsa, not 'adam'"):
        Estimator("adam")  # type: ignore[arg-type]
    with pytest.raises(OptionError, match="even number >= 2"):
        Estimator(queries=3)
    with pytest.raises(OptionError, match=r"^sigma must be positive$"):
        Estimator(sigma=0.0)


@pytest.mark.parametrize("p", [0.5, 0.2])
def test_rise_of_a_constant_score_is_that_score_everywhere(p):
    """RISE is E[f(x * M) M(j)] / p: for a score that ignores the image (3 for every input) and masks whose mean is
    p, every pixel's value is 3. 2,000 masks put the mean within 1% (measured 3.017 at p = 0.5, 2.986 at 0.2);
    a normalization by n_masks alone (3p) or by n_masks / p (3p^2) is far off."""
    model = onnxviz.load(linear(np.zeros((2, 3 * 12 * 20), np.float32), np.array([3.0, 0.0], np.float32),
                                shape=(3, 12, 20)))
    model.use_preprocessing("unit")
    x = np.random.default_rng(0).uniform(0, 1, (1, 3, 12, 20)).astype(np.float32)
    ex = onnxviz.explain(model, x, "rise", target=0, n_masks=2000, p=p, progress=False)
    assert ex.attributions.shape == (1, 12, 20)
    assert abs(float(ex.attributions.mean()) - 3.0) < 0.05 * 3.0


def test_rise_is_the_mask_weighted_mean_score_over_every_mask_it_drew(monkeypatch):
    """RISE = sum_k f(x * M_k) M_k / (N p), checked exactly on a linear model with the masks RISE itself drew (300:
    two blocks of masks, so a block skipped, a mask dropped at a block's edge or a wrong normalization fails)."""
    from onnxviz.methods import rise as rise_module

    drawn = []
    real = rise_module.render_masks

    def recorded(*args, **kwargs):
        masks = real(*args, **kwargs)
        drawn.append(masks)
        return masks

    monkeypatch.setattr(rise_module, "render_masks", recorded)  # masks are drawn in blocks, drawn per batch
    weight = np.random.default_rng(3).standard_normal((2, 3 * 10 * 14)).astype(np.float32)
    model = onnxviz.load(linear(weight, np.array([0.5, -1.0], np.float32), shape=(3, 10, 14)))
    model.use_preprocessing("unit")
    x = np.random.default_rng(4).uniform(0, 1, (1, 3, 10, 14)).astype(np.float32)
    ours = onnxviz.explain(model, x, "rise", target=1, n_masks=300, p=0.3, grid=3, progress=False).attributions[0]
    masks = np.concatenate(drawn).astype(np.float64)
    assert masks.shape == (300, 10, 14)
    scores = (x[0].astype(np.float64)[None] * masks[:, None]).reshape(300, -1) @ weight[1].astype(np.float64) - 1.0
    theirs = np.tensordot(scores, masks, axes=1) / (300 * 0.3)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5 * np.abs(theirs).max())  # float32 scores


def test_the_announced_cosine_is_exact_where_the_estimate_is():
    """Rademacher probes on one value measure its slope exactly (u^2 = 1): SPSA's announced cosine is 1 there, NES's
    sqrt(m / (m + 2)); the formula at a few sizes, as the theory gives it."""
    from onnxviz.estimate import estimate_gradient, expected_cosine

    assert expected_cosine(Estimator("spsa", 4, cells=1), (1,), None) == 1.0
    assert expected_cosine(Estimator("nes", 4, cells=1), (1,), None) == pytest.approx(np.sqrt(2 / 4))
    assert expected_cosine(Estimator("nes", 200, cells=1), (3, 10, 10), (1, 2)) == pytest.approx(np.sqrt(100 / 401))
    assert expected_cosine(Estimator("spsa", 200, cells=1), (3, 10, 10), (1, 2)) == pytest.approx(np.sqrt(100 / 399))
    assert expected_cosine(Estimator("nes", 200), (3, 10, 10), (1, 2), 5) == pytest.approx(np.sqrt(100 / 113))
    slope = estimate_gradient(np.array([0.3]), lambda batch: 2.5 * batch[:, 0], Estimator("spsa", 4, cells=1),
                              np.random.default_rng(0))
    np.testing.assert_allclose(slope, [2.5], rtol=1e-6)
