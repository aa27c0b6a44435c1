"""Faithfulness metrics and the randomization sanity check: oracles on synthetic cases."""

from __future__ import annotations

import numpy as np
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


def test_every_faithfulness_metric_equals_its_hand_computed_value():
    """A model whose answer is known: logit 0 = 2.5 * (sum of the top-left 2 x 2 pixels), logit 1 = 0.5 * (sum of the
    other 12). With x = 1 everywhere and a map ranking the four region pixels 4, 3, 2, 1 (the rest 0), every point of
    the deletion and insertion curves, both AUCs, the average drop and the increase are written out by hand here."""
    import onnx
    from onnx import helper, numpy_helper

    region = [0, 1, 4, 5]
    w = np.zeros((2, 16), np.float32)
    w[0, region] = 2.5
    w[1, [k for k in range(16) if k not in region]] = 0.5
    x_info = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 1, 4, 4])
    y_info = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 2])
    proto = helper.make_model(helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"], axis=1), helper.make_node("Gemm", ["f", "W"], ["y"], transB=1)],
        "known", [x_info], [y_info], [numpy_helper.from_array(w, "W")]), opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    model = onnxviz.load(proto)
    model.use_preprocessing("unit")
    x = np.ones((1, 1, 4, 4), np.float32)
    heat = np.zeros((1, 4, 4), np.float32)
    heat[0].flat[region] = [4, 3, 2, 1]

    def sigmoid(v):
        return 1 / (1 + np.exp(-v))

    t = np.arange(17)  # 16 steps: one pixel each; the region goes first, then the rest in index order
    deletion = sigmoid(2.5 * (4 - np.minimum(t, 4)) - 0.5 * (12 - np.maximum(t - 4, 0)))
    insertion = sigmoid(2.5 * np.minimum(t, 4) - 0.5 * np.maximum(t - 4, 0))
    trapezoid = lambda curve: float(((curve[1:] + curve[:-1]) / 2 / 16).sum())  # noqa: E731
    scores = faithfulness(model, x, heat, [0], steps=16, insert_into="zero")
    np.testing.assert_allclose(scores.deletion[0], deletion, rtol=1e-6)
    np.testing.assert_allclose(scores.insertion[0], insertion, rtol=1e-6)
    assert scores.deletion[0, 4] < 0.003  # the region removed: the class is at its floor
    np.testing.assert_allclose(scores.deletion_auc[0], trapezoid(deletion), rtol=1e-6)
    np.testing.assert_allclose(scores.insertion_auc[0], trapezoid(insertion), rtol=1e-6)
    # the image times its min-max scaled map keeps the region at 1, .75, .5, .25 and zeroes the rest: logit 0 falls
    # from 10 to 6.25, logit 1 from 6 to 0, so the confidence rises: no drop, and 100% of the images increase
    before, after = sigmoid(10 - 6), sigmoid(6.25)
    assert after > before
    assert scores.average_drop == 0.0 and scores.increase == 100.0
    inverted = faithfulness(model, x, -heat, [0], steps=16, insert_into="zero")  # the region ranked last
    assert inverted.deletion_auc[0] > scores.deletion_auc[0] and inverted.insertion_auc[0] < scores.insertion_auc[0]
