"""Numerics are reported, not drawn as a black picture: NaN/Inf weights, non-finite and all-zero
attributions; and threads sharing one loaded model get what serial calls get."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from click.testing import CliRunner

import onnxviz
from onnxviz.cli import cli
from onnxviz.demo import demo_images, demo_model_path
from tests.tiny_models import linear

X = np.random.default_rng(0).uniform(0, 1, (2, 1, 4, 4)).astype(np.float32)


def test_nan_weights_are_reported_and_non_finite_attributions_shown_as_zero():
    w = np.ones((3, 16), np.float32)
    w[1, 5] = np.nan
    with pytest.warns(UserWarning, match="NaN or Inf in its weights"):
        model = onnxviz.load(linear(w, np.zeros(3, np.float32)))
    with pytest.warns(UserWarning, match="non-finite attribution"):
        ex = onnxviz.explain(model, X, "occlusion", target=1, window=(2,))
    assert np.isfinite(ex.attributions).all()
    assert any("non-finite model output" in n for n in ex.extras["warnings"])


def test_an_all_zero_attribution_is_reported():
    model = onnxviz.load(linear(np.zeros((3, 16), np.float32), np.arange(3, dtype=np.float32)))
    with pytest.warns(UserWarning, match="zero everywhere for image"):
        ex = onnxviz.explain(model, X, "occlusion", window=(2,))
    assert "zero everywhere" in ex.extras["warnings"][0]
    picture = ex.overlay(0)
    assert np.isfinite(picture).all() and picture.max() > 0  # the image, not a black square


def test_the_cli_prints_the_warning(tmp_path):
    model = tmp_path / "flat.onnx"
    import onnx

    onnx.save(linear(np.zeros((3, 1024), np.float32), np.arange(3, dtype=np.float32), shape=(1, 32, 32)), model)
    run = CliRunner().invoke(cli, ["explain", str(model), str(demo_images()[0]), "-m", "occlusion", "-o", "window",
                                   "8", "--out", str(tmp_path / "out")])
    assert run.exit_code == 0, run.output
    assert "warning: occlusion: attribution is zero everywhere" in run.output


@pytest.mark.parametrize("method", ["saliency", "gradcam", "guided_backprop", "occlusion", "integrated_gradients"])
def test_threads_sharing_a_model_get_the_serial_results(method):
    model = onnxviz.load(demo_model_path())
    x = onnxviz.load_image(demo_images(), model)
    options = {"window": (8,)} if method == "occlusion" else {}
    serial = [onnxviz.explain(model, x[i : i + 1], method, progress=False, **options).attributions for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda i: onnxviz.explain(model, x[i : i + 1], method, progress=False,
                                                           **options).attributions, [0, 1, 2, 3] * 3))
    for k, got in enumerate(parallel):
        np.testing.assert_allclose(got, serial[k % 4], rtol=1e-5, atol=1e-6)
