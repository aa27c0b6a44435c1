"""The metrics of issue 22 in `onnxviz evaluate`: sparseness and complexity against hand-computed values,
localization (pointing game, relevance mass, relevance rank) on maps whose answers are known, infidelity and
sensitivity-max against Captum's `captum.metrics` on the native network fed the same perturbations, and the clear
refusals (a localization without ground truth, a mask of the wrong size, an empty mask)."""

from __future__ import annotations

import contextlib
import io
import json
import math
import warnings

import numpy as np
import pytest

import onnxviz
from onnxviz.evaluation.complexity import complexity, sparseness
from onnxviz.evaluation.localization import ground_truth_masks, pointing_game, relevance_mass, relevance_rank

H, W = 24, 32


def test_sparseness_and_complexity_by_hand():
    maps = np.array([[[1.0, 2.0], [3.0, 4.0]], [[1.0, 1.0], [1.0, 1.0]], [[0.0, 0.0], [0.0, 5.0]]])
    # Gini of sorted a = 1, 2, 3, 4: sum (2k - n - 1) a_k / (n sum a) = (-3 - 2 + 3 + 12) / 40
    np.testing.assert_allclose(sparseness(maps), [0.25, 0.0, 0.75], atol=1e-6)
    shares = np.array([0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(complexity(maps), [-(shares * np.log(shares)).sum(), math.log(4), 0.0], atol=1e-9)
    np.testing.assert_allclose(sparseness(-maps), sparseness(maps))  # magnitudes


def test_localization_by_hand():
    maps = np.zeros((2, 4, 6))
    maps[0, 1, 2], maps[0, 3, 5] = 5.0, 1.0  # the peak inside the box, a little mass outside
    maps[1, 0, 0], maps[1, 1, 2] = 9.0, 3.0  # the peak outside
    masks = ground_truth_masks("1,0,4,3", 2, 4, 6, read=None)  # columns 1..3, rows 0..2
    np.testing.assert_array_equal(pointing_game(maps, masks), [1.0, 0.0])
    np.testing.assert_allclose(relevance_mass(maps, masks), [5 / 6, 3 / 12])
    # k = 9 pixels in the box: image 0's top 9 hold its peak (inside) and its other value (outside), the rest
    # are zeros taken in index order (stable sort), of which the highest indices are outside
    order = np.argsort(maps[0].ravel(), kind="stable")[-9:]
    np.testing.assert_allclose(relevance_rank(maps, masks)[0], masks[0].ravel()[order].mean())
    expected = np.zeros((4, 6), bool)
    expected[0:3, 1:4] = True  # rows y0..y1, columns x0..x1
    np.testing.assert_array_equal(masks[1], expected)


def test_masks_of_the_wrong_size_or_empty_are_refused():
    with pytest.raises(onnxviz.OptionError, match="4 x 6"):
        ground_truth_masks(np.ones((6, 4)), 1, 4, 6, read=None)
    with pytest.raises(onnxviz.OptionError, match="empty"):
        ground_truth_masks(np.zeros((4, 6)), 1, 4, 6, read=None)
    with pytest.raises(onnxviz.OptionError, match="inside"):
        ground_truth_masks("0,0,7,3", 1, 4, 6, read=None)


torch = pytest.importorskip("torch")
captum_metrics = pytest.importorskip("captum.metrics")
captum_attr = pytest.importorskip("captum.attr")


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    from models.exports import FlattenHead

    net = FlattenHead(H, W, seed=3).eval()
    path = tmp_path_factory.mktemp("metrics") / "net.onnx"
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.rand(1, 3, H, W),), str(path), dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    return net, onnxviz.load(path, preprocessing="unit")


def _images(n: int = 2) -> np.ndarray:
    x = np.random.default_rng(5).random((n, 3, H, W)).astype(np.float32)
    x[:, :, :, : W // 3] *= 0.2
    return x


@pytest.mark.parametrize("normalize", [False, True])
def test_infidelity_equals_captum(pair, normalize):
    from onnxviz.evaluation.stability import class_logits, infidelity, infidelity_noise

    net, model = pair
    x, targets = _images(), np.array([1, 4])
    attributions = onnxviz.explain(model, x, "saliency", target=targets, abs=False, progress=False).attributions
    ours = infidelity(model, x, attributions, class_logits(model, targets), n_perturb=6, std=0.1,
                      normalize=normalize, seed=3)
    noise = torch.from_numpy(np.concatenate([infidelity_noise(image, 6, 0.1, 3) for image in x])).float()

    def perturb(inputs):  # Captum repeats each image n times in a row, as our draws are laid out
        return noise, inputs - noise

    theirs = captum_metrics.infidelity(net, perturb, torch.from_numpy(x), torch.from_numpy(attributions),
                                       target=targets.tolist(), n_perturb_samples=6, normalize=normalize).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-3)


def test_sensitivity_max_equals_captum(pair):
    from onnxviz.evaluation.stability import sensitivity_max, sensitivity_noise

    net, model = pair
    x, targets = _images(), np.array([0, 2])
    explainer = onnxviz.Explainer(model, "saliency", progress=False)
    base = explainer.explain(x, targets).attributions

    def again(batch, i):
        return explainer.explain(batch, [int(targets[i])] * len(batch)).attributions

    ours = sensitivity_max(again, x, base, n_perturb=5, radius=0.05, seed=1)
    noise = torch.from_numpy(np.concatenate([sensitivity_noise(image, 5, 0.05, 1) for image in x])).float()
    theirs = captum_metrics.sensitivity_max(captum_attr.Saliency(net).attribute, torch.from_numpy(x),
                                            perturb_func=lambda inputs: inputs + noise, n_perturb_samples=5,
                                            target=torch.from_numpy(targets)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-3)


def test_evaluate_scores_every_metric_and_saves_them(pair, tmp_path):
    _, model = pair
    x = _images()
    result = onnxviz.evaluate(model, x, ["saliency", "gradcam"], steps=4, ground_truth="2,3,20,18", n_perturb=2,
                              metrics=["complexity", "infidelity", "sensitivity", "road"])
    for method in ("saliency", "gradcam"):
        assert set(result.scores[method]) == {"sparseness", "complexity", "pointing_game", "relevance_mass",
                                              "relevance_rank", "infidelity", "sensitivity_max", "road_morf",
                                              "road_lerf", "road_combined"}
        assert all(v.shape == (2,) and np.isfinite(v).all() for v in result.scores[method].values())
    assert not result.faithfulness  # not asked for
    saved = json.loads(result.save(tmp_path).read_text())
    assert saved["gradcam"]["relevance_rank"] == result.scores["gradcam"]["relevance_rank"].tolist()


def test_localization_without_ground_truth_is_refused(pair):
    _, model = pair
    with pytest.raises(onnxviz.OptionError, match="ground truth"):
        onnxviz.evaluate(model, _images(1), ["saliency"], metrics=["localization"])
    with pytest.raises(onnxviz.OptionError, match="faithfulness, complexity"):
        onnxviz.evaluate(model, _images(1), ["saliency"], metrics=["roadd"])


def test_cli_prints_the_metrics_and_refuses_a_mask_of_the_wrong_size(pair, tmp_path):
    from click.testing import CliRunner

    from onnxviz.cli import cli

    _, model = pair
    image = tmp_path / "img.png"
    import cv2

    cv2.imwrite(str(image), (np.random.default_rng(0).random((H, W, 3)) * 255).astype(np.uint8))
    runner = CliRunner()
    ok = runner.invoke(cli, ["evaluate", model.source, str(image), "-m", "saliency", "--metric", "complexity",
                              "--ground-truth", "0,0,16,12", "--preprocess", "unit", "--out", str(tmp_path / "o")])
    assert ok.exit_code == 0, ok.output
    assert "pointing_game" in ok.output and "sparseness" in ok.output
    mask = tmp_path / "mask.png"
    cv2.imwrite(str(mask), np.full((10, 10), 255, np.uint8))
    bad = runner.invoke(cli, ["evaluate", model.source, str(image), "-m", "saliency", "--ground-truth", str(mask),
                               "--preprocess", "unit", "--out", str(tmp_path / "o2")])
    assert bad.exit_code != 0
    assert "24 x 32" in bad.output and "Traceback" not in bad.output


def test_road_equals_pytorch_grad_cam_without_noise(pair):
    pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.metrics.perturbation_confidence import (
        PerturbationConfidenceMetric,
        RemoveLeastRelevantFirst,
        RemoveMostRelevantFirst,
    )
    from pytorch_grad_cam.metrics.road import NoisyLinearImputer
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from onnxviz.evaluation.road import road
    from onnxviz.evaluation.stability import class_logits

    net, model = pair
    x, targets = _images(), np.array([3, 1])
    cams = onnxviz.explain(model, x, "saliency", target=targets, progress=False).maps()
    cams = (cams - cams.min(axis=(1, 2), keepdims=True)) / np.ptp(cams, axis=(1, 2), keepdims=True)
    ours = road(x, cams, class_logits(model, targets), lambda b: b, percentiles=(20, 50, 80), noise=0.0)
    chosen = [ClassifierOutputTarget(int(t)) for t in targets]
    for first, found in ((RemoveMostRelevantFirst, ours.morf), (RemoveLeastRelevantFirst, ours.lerf)):
        theirs = np.mean([PerturbationConfidenceMetric(first(p, NoisyLinearImputer(noise=0.0)))(
            torch.from_numpy(x), cams.astype(np.float32), chosen, net) for p in (20, 50, 80)], axis=0)
        np.testing.assert_allclose(found, theirs, atol=1e-4 * float(np.abs(theirs).max()))
    np.testing.assert_allclose(ours.combined, (ours.lerf - ours.morf) / 2)


def test_imputation_fills_a_plane_exactly():
    from onnxviz.evaluation.road import impute

    yy, xx = np.mgrid[0:9, 0:11].astype(np.float64)
    plane = np.stack([2 * yy + 3 * xx, yy - xx])  # linear: every pixel is the weighted mean of its neighbours
    keep = np.ones((9, 11), bool)
    keep[2:6, 3:9] = False
    np.testing.assert_allclose(impute(plane, keep, noise=0.0), plane, atol=1e-9)
    holed = impute(plane, keep, noise=0.5, rng=np.random.default_rng(0))
    assert 0.4 < (holed - plane)[:, ~keep].std() < 0.6 and np.array_equal(holed[:, keep], plane[:, keep])


def test_a_score_metric_of_a_class_agnostic_method_is_refused(pair):
    _, model = pair
    with pytest.raises(onnxviz.OptionError, match="class-agnostic"):
        onnxviz.evaluate(model, _images(1), ["gradcam", "eigencam"], metrics=["infidelity"])
