"""Faithfulness metrics and the randomization sanity check: oracles on synthetic cases."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import onnxviz
from onnxviz.cli import cli
from onnxviz.demo import demo_images, demo_model_path
from onnxviz.evaluation.faithfulness import faithfulness
from onnxviz.evaluation.sanity import cascading_randomization
from tests.tiny_models import linear


def _region_model():
    """Class 1's logit reads only the top-left 4x4 of an 8x8 grey image; class 0's is a constant."""
    w = np.zeros((2, 64), np.float32)
    w[1] = np.pad(np.ones((4, 4)), ((0, 4), (0, 4))).ravel() * 0.5
    return onnxviz.load(linear(w, np.array([4.0, 0.0], np.float32), shape=(1, 8, 8)))


def test_a_perfect_attribution_beats_a_random_one():
    model = _region_model()
    x = np.random.default_rng(0).uniform(0.5, 1.0, (3, 1, 8, 8)).astype(np.float32)
    perfect = np.broadcast_to(np.pad(np.ones((4, 4)), ((0, 4), (0, 4))), (3, 8, 8)) * x[:, 0]
    rng = np.random.default_rng(1)
    random_maps = rng.random((3, 8, 8))
    # a blurred copy keeps a linear model's sum: insertion starts from zeros here
    good = faithfulness(model, x, perfect, [1, 1, 1], steps=16, insert_into="zero")
    bad = faithfulness(model, x, random_maps, [1, 1, 1], steps=16, insert_into="zero")
    assert (good.deletion_auc < bad.deletion_auc).all(), (good.deletion_auc, bad.deletion_auc)
    assert (good.insertion_auc > bad.insertion_auc).all(), (good.insertion_auc, bad.insertion_auc)
    assert good.deletion.shape == (3, 17)
    np.testing.assert_allclose(good.deletion[:, 0], good.insertion[:, -1], rtol=1e-6)  # the intact image


def test_randomizing_all_weights_changes_a_gradient_map():
    model = onnxviz.load(demo_model_path())
    x = onnxviz.load_image(demo_images(), model)
    check = cascading_randomization(model, x, "saliency")
    assert len(check.layers) == 4 and check.layers[0] == "output"  # the top layer goes first
    assert check.spearman_abs[-1] < 0.5 and check.passed  # the original agrees with itself at 1.0


def test_cli_evaluate(tmp_path):
    image = str(demo_model_path().parent / "digit_3.png")
    run = CliRunner().invoke(cli, ["evaluate", str(demo_model_path()), image, "-m", "occlusion", "-m", "saliency",
                                   "--steps", "8", "--sanity", "--out", str(tmp_path)])
    assert run.exit_code == 0, run.output
    assert "deletion AUC" in run.output and "sanity:" in run.output and (tmp_path / "evaluate.json").is_file()


REGION = [0, 1, 4, 5]  # the top-left 2 x 2 of a 4 x 4 grey image, flattened


def _known_model():
    """logit 0 = 2.5 * (sum of the top-left 2 x 2 pixels), logit 1 = 0.5 * (sum of the other 12), unit preprocessing."""
    w = np.zeros((2, 16), np.float32)
    w[0, REGION] = 2.5
    w[1, [k for k in range(16) if k not in REGION]] = 0.5
    model = onnxviz.load(linear(w, np.zeros(2, np.float32), shape=(1, 4, 4)))
    model.use_preprocessing("unit")
    return model


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def _known_heat() -> np.ndarray:
    heat = np.zeros((1, 4, 4), np.float32)
    heat[0].flat[REGION] = [4, 3, 2, 1]
    return heat


def test_every_faithfulness_metric_equals_its_hand_computed_value():
    """A model whose answer is known: logit 0 = 2.5 * (sum of the top-left 2 x 2 pixels), logit 1 = 0.5 * (sum of the
    other 12). With x = 1 everywhere and a map ranking the four region pixels 4, 3, 2, 1 (the rest 0), every point of
    the deletion and insertion curves, both AUCs, the average drop and the increase are written out by hand here."""
    model = _known_model()
    x = np.ones((1, 1, 4, 4), np.float32)
    heat = _known_heat()
    t = np.arange(17)  # 16 steps: one pixel each; the region goes first, then the rest in index order
    deletion = _sigmoid(2.5 * (4 - np.minimum(t, 4)) - 0.5 * (12 - np.maximum(t - 4, 0)))
    insertion = _sigmoid(2.5 * np.minimum(t, 4) - 0.5 * np.maximum(t - 4, 0))
    trapezoid = lambda curve: float(((curve[1:] + curve[:-1]) / 2 / 16).sum())  # noqa: E731
    scores = faithfulness(model, x, heat, [0], steps=16, insert_into="zero")
    np.testing.assert_allclose(scores.deletion[0], deletion, rtol=1e-6)
    np.testing.assert_allclose(scores.insertion[0], insertion, rtol=1e-6)
    assert scores.deletion[0, 4] < 0.003  # the region removed: the class is at its floor
    np.testing.assert_allclose(scores.deletion_auc[0], trapezoid(deletion), rtol=1e-6)
    np.testing.assert_allclose(scores.insertion_auc[0], trapezoid(insertion), rtol=1e-6)
    # the image times its min-max scaled map keeps the region at 1, .75, .5, .25 and zeroes the rest: logit 0 falls
    # from 10 to 6.25, logit 1 from 6 to 0, so the confidence rises: no drop, and 100% of the images increase
    before, after = _sigmoid(10 - 6), _sigmoid(6.25)
    assert after > before
    assert scores.average_drop == 0.0 and scores.increase == 100.0
    inverted = faithfulness(model, x, -heat, [0], steps=16, insert_into="zero")  # the region ranked last
    assert inverted.deletion_auc[0] > scores.deletion_auc[0] and inverted.insertion_auc[0] < scores.insertion_auc[0]


def test_average_drop_and_increase_are_means_over_images_in_percent():
    """The hand-made map of the test above, and its negation (the region ranked last: the image times that map keeps
    the region at 0, .25, .5, .75 and the rest at 1, so logit 0 = 3.75 and logit 1 = 6, the confidence drops)."""
    model = _known_model()
    x = np.ones((2, 1, 4, 4), np.float32)
    heat = _known_heat()[0]
    scores = faithfulness(model, x, np.stack([heat, -heat]), [0, 0], steps=4, insert_into="zero")
    before = _sigmoid(10 - 6)
    drops = [0.0, (before - _sigmoid(3.75 - 6)) / before]
    np.testing.assert_allclose(scores.average_drop, 100 * np.mean(drops), rtol=1e-5)
    assert scores.increase == 50.0  # one of the two rises, the other falls
    same = faithfulness(model, x[:1], heat[None] / 8, [0], steps=4, insert_into="zero")  # min-max: scale-free
    assert same.increase == 100.0 and same.average_drop == 0.0
    # explaining class 1 on the first image: each map is scaled by its own min and max, not the batch's
    other = faithfulness(model, x, np.stack([heat, -heat]), [1, 0], steps=4, insert_into="zero")
    before1 = _sigmoid(6 - 10)
    drops = [(before1 - _sigmoid(0 - 6.25)) / before1, (before - _sigmoid(3.75 - 6)) / before]
    np.testing.assert_allclose(other.average_drop, 100 * np.mean(drops), rtol=1e-5)
    assert other.increase == 0.0
    flat = faithfulness(model, x[:1], np.ones((1, 4, 4)), [0], steps=4, insert_into="zero")
    assert flat.increase == 0.0  # a flat map scales to 0 (no span): the image goes black, the confidence to 0.5
    np.testing.assert_allclose(flat.average_drop, 100 * (before - 0.5) / before, rtol=1e-5)


def test_insertion_starts_from_the_image_blurred_with_sigma_a_twentieth_of_its_side():
    """The default insertion baseline is the image Gaussian-blurred over its height and width (sigma = max(H, W) / 20,
    cv2's reflecting border), here on a non-square NHWC linear model: its first point is the confidence on that
    blurred image, computed with cv2 and the weights. Tied map values go in reading order (a stable sort)."""
    import cv2

    h, w = 24, 40
    rng = np.random.default_rng(2)
    weights = rng.standard_normal((2, h * w * 3)).astype(np.float32) * 0.05
    model = onnxviz.load(linear(weights, np.zeros(2, np.float32), shape=(h, w, 3)))
    model.use_preprocessing("unit")
    x = rng.uniform(0, 1, (1, h, w, 3)).astype(np.float32)

    def confidence(image):
        z = weights.astype(np.float64) @ image.ravel()
        return _sigmoid(z[0] - z[1])

    scores = faithfulness(model, x, np.zeros((1, h, w)), [0], steps=4)
    np.testing.assert_allclose(scores.insertion[0, 0], confidence(cv2.GaussianBlur(x[0], (0, 0), w / 20)), rtol=1e-5)
    removed = x[0].copy().reshape(h * w, 3)
    removed[: h * w // 4] = 0  # the first quarter of the pixels in reading order
    np.testing.assert_allclose(scores.deletion[0, 1], confidence(removed), rtol=1e-5)
    known, ones = _known_model(), np.ones((1, 1, 4, 4), np.float32)
    flat = faithfulness(known, ones, _known_heat(), [0], steps=4)
    np.testing.assert_allclose(flat.insertion[0], _sigmoid(10 - 6), rtol=1e-6)  # a blurred constant is itself
    assert faithfulness(known, ones, _known_heat(), [0]).deletion.shape == (1, 33)  # 32 steps by default
    with pytest.raises(ValueError, match="insert_into must be blur or zero, not 'noise'"):
        faithfulness(known, ones, _known_heat(), [0], insert_into="noise")


def test_evaluation_records_every_score_under_its_name(tmp_path):
    import json

    model = onnxviz.load(demo_model_path())
    result = onnxviz.evaluate(demo_model_path(), demo_images()[:2], methods=("saliency", "input_x_gradient"), steps=4,
                              sanity=True)
    x = onnxviz.load_image(demo_images()[:2], model)
    batch = onnxviz.evaluate(model, x, methods=("saliency",), steps=4)  # a model-space batch as it is
    np.testing.assert_allclose(batch.faithfulness["saliency"].deletion, result.faithfulness["saliency"].deletion)
    for method in ("saliency", "input_x_gradient"):  # each method's own maps, signed ones by their magnitude
        ex = onnxviz.explain(model, x, method, progress=False)
        direct = faithfulness(model, x, np.abs(ex.maps()), ex.targets, steps=4)
        np.testing.assert_allclose(result.faithfulness[method].deletion, direct.deletion, rtol=1e-6)
        assert np.isfinite(result.sanity[method].ssim).all() and (result.sanity[method].ssim < 1).all()
    written = result.save(tmp_path)
    assert written == tmp_path / "evaluate.json"
    text = written.read_text()
    assert text.startswith('{\n  "')  # indented for people who read it
    saved = json.loads(text)
    assert sorted(saved) == ["input_x_gradient", "saliency"]
    for method, row in saved.items():
        scores, check = result.faithfulness[method], result.sanity[method]
        assert row["deletion_auc"] == scores.deletion_auc.tolist()
        assert row["insertion_auc"] == scores.insertion_auc.tolist()
        assert row["average_drop"] == scores.average_drop and row["increase"] == scores.increase
        assert row["sanity"] == {"layers": check.layers, "spearman_abs": check.spearman_abs.tolist(),
                                 "ssim": check.ssim.tolist(), "passed": check.passed}
        assert scores.deletion.shape == (2, 5)  # steps=4 reached the metrics
    plain = onnxviz.evaluate(model, demo_images()[:1], methods=("saliency",))
    assert "sanity" not in plain.as_dict()["saliency"]
    assert plain.faithfulness["saliency"].deletion.shape == (1, 33)  # 32 steps by default


def test_randomized_weights_keep_each_tensors_scale():
    """Cascading randomization draws each re-initialized tensor with that tensor's own standard deviation (a zero
    tensor gets 0.01), so a layer is randomized, not blown up or silenced."""
    import onnx
    from onnx import numpy_helper

    from onnxviz.evaluation.sanity import randomized

    proto = onnx.load(demo_model_path())
    weights = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer if i.dims and np.prod(i.dims) > 500}
    zero = next(iter(weights))
    proto.graph.initializer[[i.name for i in proto.graph.initializer].index(zero)].CopyFrom(
        numpy_helper.from_array(np.zeros_like(weights[zero]), zero))
    fresh = randomized(proto, set(weights), np.random.default_rng(0))
    for init in fresh.graph.initializer:
        if init.name in weights:
            got = numpy_helper.to_array(init)
            expected = 0.01 if init.name == zero else float(weights[init.name].std())
            assert abs(got.std() / expected - 1) < 0.1, (init.name, got.std(), expected)
            assert not np.allclose(got, weights[init.name])


def test_the_sanity_check_explains_the_original_targets_with_the_given_method_and_options(monkeypatch):
    """Every randomized model is explained with the method, options and targets of the original explanation; the
    default seed is 0 and the default threshold 0.5."""
    from onnxviz.evaluation import sanity

    calls = []
    real = sanity.explain

    def spy(model, x, method, **kw):
        calls.append((method, kw))
        return real(model, x, method, **kw)

    monkeypatch.setattr(sanity, "explain", spy)
    model = onnxviz.load(demo_model_path())
    x = onnxviz.load_image(demo_images()[:2], model)
    check = cascading_randomization(model, x, "occlusion", steps=2, window=(8,))
    original_targets = onnxviz.explain(model, x, "occlusion", window=(8,), progress=False).targets.tolist()
    assert [c[0] for c in calls] == ["occlusion"] * 3
    assert all(kw["window"] == (8,) and kw["progress"] is False for _, kw in calls)
    assert all(kw["target"] == original_targets for _, kw in calls[1:])
    assert check.threshold == 0.5
    again = cascading_randomization(model, x, "occlusion", steps=2, seed=0, window=(8,))
    np.testing.assert_array_equal(check.spearman_abs, again.spearman_abs)


def test_the_randomized_models_keep_the_layout_device_and_limits_the_user_chose(monkeypatch):
    """A 3 x 3 x 3 input that auto-detection reads as NHWC, loaded as NCHW by the user: every randomized copy must be
    read as NCHW too (an NHWC copy would explain the image with its axes swapped), on the same device and limits."""
    from onnxviz.evaluation import sanity
    from tests.test_model import _transpose_first

    seen = []
    real = sanity.explain

    def spy(model, x, method, **kw):
        seen.append((model.input.layout, model.device, model.limits, model.parity_tolerance))
        return real(model, x, method, **kw)

    monkeypatch.setattr(sanity, "explain", spy)
    limits = onnxviz.Limits(run_timeout=123.0)
    model = onnxviz.load(_transpose_first(["N", 3, 3, 3], True), layout="NCHW", limits=limits, parity_tolerance=0.02)
    x = np.random.default_rng(0).random((1, 3, 3, 3)).astype(np.float32)
    cascading_randomization(model, x, "occlusion", window=(1,), stride=(1,))
    assert len(seen) == 2 and all(s == ("NCHW", "cpu", limits, 0.02) for s in seen)
