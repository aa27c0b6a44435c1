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
