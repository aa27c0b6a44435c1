"""Inputs as production graphs take them (issue 21): a graph that normalizes its input itself (Div 255, Sub mean,
Div std at its start) is detected and fed raw pixels, and a uint8 input gets pixels 0..255 without wrap-around.
The oracle is the float model they wrap (a Flatten-head CNN on a non-square 40 x 56 photo crop)."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

import onnxviz
from onnxviz.cli import cli
from onnxviz.errors import InputWarning

torch = pytest.importorskip("torch")
from models.exports import FlattenHead  # noqa: E402

H, W = 40, 56
MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


class Baked(torch.nn.Module):
    """The network behind its own preprocessing: pixels 0..255 in (float, or uint8 cast first)."""

    def __init__(self, net, uint8: bool = False):
        super().__init__()
        self.net, self.uint8 = net, uint8
        self.register_buffer("mean", torch.tensor(MEAN, dtype=torch.float32).reshape(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD, dtype=torch.float32).reshape(1, 3, 1, 1))

    def forward(self, x):
        x = x.float() if self.uint8 else x
        return self.net((x / 255 - self.mean) / self.std)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    net = FlattenHead(H, W, seed=1).eval()
    examples = {"base": (net, torch.rand(1, 3, H, W)), "baked": (Baked(net).eval(), torch.rand(1, 3, H, W) * 255),
                "uint8": (Baked(net, uint8=True).eval(), torch.randint(0, 256, (1, 3, H, W), dtype=torch.uint8))}
    loaded = {}
    for name, (module, example) in examples.items():
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (example,), str(folder / f"{name}.onnx"), dynamo=False, opset_version=17,
                              input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
        loaded[name] = onnxviz.load(folder / f"{name}.onnx", preprocessing="imagenet" if name == "base" else None)
    return loaded


@pytest.fixture(scope="module")
def photo():
    from skimage import data

    return data.coffee()[100:260, 150:374].astype(np.float32) / 255  # a 160 x 224 crop, resized to 40 x 56


def test_a_graph_that_normalizes_itself_is_fed_raw_pixels(models, photo):
    base, baked = models["base"], models["baked"]
    assert baked.preprocessing_source == ("detected: the graph normalizes its input itself (Div, Sub, Div at its "
                                          "start): fed raw pixels 0..255")
    assert not baked.assumptions()  # nothing guessed
    x, raw = onnxviz.load_image(photo, base), onnxviz.load_image(photo, baked)
    assert 100 < raw.max() <= 255 and raw.min() >= 0
    np.testing.assert_allclose(baked.run(raw, ("y",))[0], base.run(x, ("y",))[0], rtol=1e-4, atol=1e-5)
    ours = onnxviz.explain(baked, raw, "saliency", target=2, abs=False, progress=False).attributions
    theirs = onnxviz.explain(base, x, "saliency", target=2, abs=False, progress=False).attributions
    expected = theirs / (255 * STD.reshape(1, 3, 1, 1))  # d/d(pixel) = d/d(normalized) / (255 std) per channel
    np.testing.assert_allclose(ours, expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max())
    run = CliRunner().invoke(cli, ["info", baked.source, "--no-torch"])
    assert "detected: the graph normalizes its input itself" in run.output


def test_normalizing_twice_is_warned_about(models, photo):
    baked = models["baked"]
    with pytest.warns(InputWarning, match=r"normalizes its input itself .*normalizes it a second time"):
        onnxviz.load(baked.source, preprocessing="imagenet")
    normalized = onnxviz.load_image(photo, models["base"])  # values in about [-2, 2.6]
    with pytest.warns(InputWarning, match=r"this batch holds values in \[-?\d.*feed pixels 0..255"):
        onnxviz.explain(baked, normalized, "occlusion", window=(8,), stride=(8,), progress=False)


def test_a_uint8_input_gets_its_pixels_without_wrap_around(models, photo):
    """load_image gave the uint8 graph four distinct values {0, 1, 254, 255} before; now pixels 0..255 (kept as
    floats so perturbations stay continuous, rounded where onnxruntime is fed), scored as the float graph scores
    the rounded pixels; gradients pass through the graph's own Cast."""
    u8, baked = models["uint8"], models["baked"]
    assert u8.input.dtype == np.uint8 and u8.input.batch_dtype == np.float32
    x = onnxviz.load_image(photo, u8)
    assert x.dtype == np.float32 and len(np.unique(x)) > 100 and 0 <= x.min() and x.max() <= 255
    rounded = np.rint(x)
    np.testing.assert_allclose(u8.run(x, ("y",))[0], baked.run(rounded, ("y",))[0], rtol=1e-5, atol=1e-6)
    ours = onnxviz.explain(u8, rounded, "saliency", target=1, abs=False, progress=False).attributions
    theirs = onnxviz.explain(baked, rounded, "saliency", target=1, abs=False, progress=False).attributions
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)
    occlusion = onnxviz.explain(u8, x, "occlusion", target=1, window=(8,), stride=(4,), progress=False)
    assert np.isfinite(occlusion.attributions).all() and np.abs(occlusion.attributions).max() > 0
