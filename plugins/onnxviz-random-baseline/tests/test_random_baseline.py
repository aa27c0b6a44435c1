"""The plugin's own tests: it keeps onnxviz's method contract and is listed once installed."""

from __future__ import annotations

import numpy as np

import onnxviz
from onnxviz.testing import check_method


def test_keeps_the_method_contract():
    report = check_method("random_baseline")
    assert report["backend"] == "onnxruntime"


def test_is_listed_with_its_distribution():
    row = next(r for r in onnxviz.plugins() if r["name"] == "random_baseline")
    assert row["distribution"] == "onnxviz-random-baseline" and row["error"] is None


def test_seed_changes_the_map_and_the_image_fixes_it():
    from onnxviz.demo import demo_images, demo_model_path

    model = onnxviz.load(demo_model_path())
    x = onnxviz.load_image(demo_images()[:2], model)
    a = onnxviz.explain(model, x, "random_baseline", seed=1).attributions
    b = onnxviz.explain(model, x, "random_baseline", seed=2).attributions
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(a[1], onnxviz.explain(model, x[1:], "random_baseline", seed=1).attributions[0])
