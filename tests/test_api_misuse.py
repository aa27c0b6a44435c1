"""Issue 15: misuse of the Python API is one OnnxvizError that says what is wrong, never a raw exception from
numpy, onnxruntime or torch (and never a memory bomb)."""

from __future__ import annotations

import numpy as np
import pytest

import onnxviz
from onnxviz.demo import demo_images, demo_model_path


@pytest.fixture(scope="module")
def model():
    return onnxviz.load(demo_model_path())


@pytest.fixture(scope="module")
def x(model):
    return onnxviz.load_image(demo_images()[:2], model)


CASES = {
    "x is None": (lambda m, x: onnxviz.explain(m, None, "saliency"), onnxviz.ImageError, "not NoneType"),
    "an empty batch": (lambda m, x: onnxviz.explain(m, x[:0], "saliency"), onnxviz.ImageError, "the batch is empty"),
    "an empty list": (lambda m, x: onnxviz.explain(m, [], "saliency"), onnxviz.ImageError, "no images given"),
    "a batch of the wrong shape": (lambda m, x: onnxviz.explain(m, np.zeros((2, 3, 8, 8), np.float32), "saliency"),
                                   onnxviz.ImageError, r"has shape \[2, 3, 8, 8\], but the model's input"),
    "target 2**70": (lambda m, x: onnxviz.explain(m, x, "saliency", target=2**70), onnxviz.TargetError,
                     "out of range"),
    "a boolean target": (lambda m, x: onnxviz.explain(m, x, "saliency", target=True), onnxviz.TargetError,
                         "bad target True"),
    "layer=3": (lambda m, x: onnxviz.explain(m, x, "gradcam", layer=3), onnxviz.LayerError,
                "a tensor or node name"),
    "a float batch_size": (lambda m, x: onnxviz.explain(m, x, "saliency", batch_size=2.5), onnxviz.OptionError,
                           "batch_size must be a whole number"),
    "seed=-1": (lambda m, x: onnxviz.explain(m, x, "rise", seed=-1, n_masks=8), onnxviz.OptionError,
                "seed must be a whole number of at least 0"),
    "a text seed": (lambda m, x: onnxviz.explain(m, x, "rise", seed="a", n_masks=8), onnxviz.OptionError, "seed"),
    "n_steps=1e9": (lambda m, x: onnxviz.explain(m, x, "integrated_gradients", n_steps=10**9),
                    onnxviz.OptionError, "n_steps must be 2..100,000"),
    "n_masks=1e9": (lambda m, x: onnxviz.explain(m, x, "rise", n_masks=10**9), onnxviz.OptionError,
                    "n_masks must be at most 1,000,000"),
    "nt_samples=1e9": (lambda m, x: onnxviz.explain(m, x, "smoothgrad", nt_samples=10**9), onnxviz.OptionError,
                       "nt_samples must be at most"),
    "an occlusion window of 0": (lambda m, x: onnxviz.explain(m, x, "occlusion", window=(0,)), onnxviz.OptionError,
                                 r"window must be one or two positive integers, got \(0,\)"),
    "nt_samples=0": (lambda m, x: onnxviz.explain(m, x, "smoothgrad", nt_samples=0), onnxviz.OptionError,
                     "nt_samples must be at least 1 and stdevs non-negative"),
    "load(123)": (lambda m, x: onnxviz.load(123), onnxviz.ModelError, "not int"),
    "load(None)": (lambda m, x: onnxviz.load(None), onnxviz.ModelError, "not NoneType"),
    "load_image([])": (lambda m, x: onnxviz.load_image([], m), onnxviz.ImageError, "no images given"),
    "load_image(None)": (lambda m, x: onnxviz.load_image(None, m), onnxviz.ImageError, "not NoneType"),
    "a NaN image array": (lambda m, x: onnxviz.load_image(np.full((4, 4, 3), np.nan, np.float32), m),
                          onnxviz.ImageError, "NaN or infinite"),
    "an image array in 0..255": (lambda m, x: onnxviz.load_image(np.full((4, 4, 3), 200.0, np.float32), m),
                                 onnxviz.ImageError, r"ranges 200..200; image arrays are RGB in \[0, 1\]"),
    "a synthesis range of 100,000 classes": (
        lambda m, x: onnxviz.synthesize(m, "maximize", "class:0-99999", steps=1), onnxviz.OptionError,
        "a range of 100,000 images"),
    "a class the model lacks": (lambda m, x: onnxviz.synthesize(m, "maximize", "class:12", steps=1),
                                onnxviz.OptionError, r"index 12 but only 10 classes \(0..9\)"),
    "an attack target 2**70": (lambda m, x: onnxviz.attack(m, [demo_images()[0]], "fgsm", target=2**70),
                               onnxviz.TargetError, "out of range"),
    "Limits(worker_memory_bytes=-5)": (lambda m, x: onnxviz.Limits(worker_memory_bytes=-5), onnxviz.OptionError,
                                       "a positive integer is needed"),
    "Limits(allowed_domains='com.microsoft')": (lambda m, x: onnxviz.Limits(allowed_domains="com.microsoft"),
                                                onnxviz.OptionError, "a set of domain names"),
    "Preprocessing(std=0)": (lambda m, x: onnxviz.Preprocessing(std=(0,)), onnxviz.OptionError,
                             "std must be positive"),
    "methods('nope')": (lambda m, x: onnxviz.plugins("nope"), onnxviz.MethodError, "unknown method 'nope'"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_api_misuse_is_one_onnxviz_error(case, model, x):
    call, error, message = CASES[case]
    with pytest.raises(error, match=message):
        call(model, x)


def test_integer_and_grey_arrays_are_images_too(model):
    a = onnxviz.load_image(np.full((8, 8, 3), 255, np.uint8), model)
    b = onnxviz.load_image(np.ones((8, 8, 3), np.float32), model)
    c = onnxviz.load_image(np.ones((8, 8), np.float32), model)  # 2-D: one grey image
    np.testing.assert_allclose(a, b)
    np.testing.assert_allclose(a, c, atol=1e-6)
    assert onnxviz.plugins("saliency")[0]["name"] == "saliency"
