"""Pictures a person can read (issue 17 item 5): signed-noisy methods drawn by magnitude, a colour bar with the
scale on every per-image file and a key under every grid, per-image files at a readable size, and grids that keep
a non-square model's aspect ratio."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from PIL import Image

import onnxviz
from onnxviz.viz.colorbar import HEIGHT
from onnxviz.viz.drawing import MIN_SIDE
from onnxviz.viz.grid import CAPTION
from onnxviz.viz.report import write_run
from tests.tiny_models import pooled_net


@pytest.fixture(scope="module")
def wide_model(tmp_path_factory):
    """A 6 x 10 (H x W) input: non-square, and small enough that its pictures must be scaled up."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("wide") / "wide.onnx"
    onnx.save(pooled_net(rng.standard_normal((4, 3, 3, 3)), rng.standard_normal((3, 4))), path)
    model = onnxviz.load(path)
    model.use_preprocessing("unit")
    return model


@pytest.fixture(scope="module")
def wide_batch(wide_model):
    return onnxviz.load_image(list(np.random.default_rng(1).random((2, 30, 50, 3)).astype(np.float32)), wide_model)


@pytest.mark.parametrize("method", ["integrated_gradients", "input_x_gradient", "guided_backprop", "deconvnet"])
def test_signed_noisy_methods_are_drawn_by_their_magnitude(wide_model, wide_batch, method):
    ex = onnxviz.explain(wide_model, wide_batch, method, progress=False)
    assert ex.extras["display"] == "absolute" and ex.signed  # the arrays keep their signs (evaluation uses them)
    _, norm, diverging = ex.drawn()
    assert not diverging and norm.min() >= 0
    expected = onnxviz.viz.normalize_maps(np.abs(ex.maps()), False)
    np.testing.assert_allclose(norm, expected, atol=1e-6)


def test_occlusion_stays_signed_and_its_scale_is_the_percentile(wide_model, wide_batch):
    ex = onnxviz.explain(wide_model, wide_batch, "occlusion", window=(2,), stride=(2,), progress=False)
    assert "display" not in ex.extras
    m = ex.maps()
    diverging = ex.drawn()[2]
    assert diverging == bool((m < 0).any() and (m > 0).any())
    for i, (low, high) in enumerate(ex.scales()):
        if diverging:
            top = np.percentile(np.abs(m[i]), 99.5)
            np.testing.assert_allclose((low, high), (-top, top), rtol=1e-6)
        else:
            np.testing.assert_allclose((low, high), (m[i].min(), np.percentile(m[i], 99.5)), rtol=1e-6)


def test_files_are_readable_and_carry_their_colour_bar(wide_model, wide_batch, tmp_path):
    ex = onnxviz.explain(wide_model, wide_batch, "gradcam", progress=False)
    names = ["a.png", "b.png"]
    write_run(tmp_path, [ex], names, wide_model.name, arrays=False)
    picture = np.asarray(Image.open(tmp_path / "a_gradcam.png"))
    factor = -(-MIN_SIDE // 6)  # the 6-pixel side reaches MIN_SIDE
    assert picture.shape[:2] == (6 * factor + HEIGHT, 10 * factor)  # aspect kept: 6 x 10 scaled, bar below
    bar = picture[6 * factor :]
    ramp = bar[3:13, 4:-4].astype(int)
    assert np.abs(np.diff(ramp.mean(axis=0), axis=0)).sum() > 100  # a colour ramp, not a blank strip
    np.testing.assert_array_equal(picture[: 6 * factor : factor, :: factor, :3],
                                  (np.clip(ex.overlay(0), 0, 1) * 255 + 0.5).astype(np.uint8))


def test_the_grid_keeps_the_aspect_ratio_and_has_a_key(wide_model, wide_batch, tmp_path):
    ex = onnxviz.explain(wide_model, wide_batch, "gradcam", progress=False)
    write_run(tmp_path, [ex], ["a.png", "b.png"], wide_model.name, arrays=False)
    grid = np.asarray(Image.open(tmp_path / "grid.png"))[..., :3].astype(int)
    rows = 2 * (224 + CAPTION + 4) - 4
    assert grid.shape[0] == rows + 4 + HEIGHT
    cell = grid[CAPTION : CAPTION + 224, 228 : 228 + 224]  # the first overlay cell
    band = (224 - round(224 * 6 / 10)) // 2  # 6 x 10 fitted into 224 x 224: white bands above and below
    assert (cell[: band - 1] == 255).all() and (cell[-(band - 1) :] == 255).all()
    assert not (cell[band + 2 : -band - 2] == 255).all()
    key = grid[rows + 4 :, 228 : 228 + 224]
    assert np.abs(np.diff(key[3:13, 4:-4].mean(axis=0), axis=0)).sum() > 100


def test_smoothing_and_the_display_can_be_chosen_without_touching_the_arrays(wide_model, wide_batch, tmp_path):
    import cv2
    from click.testing import CliRunner

    from onnxviz.cli import cli

    ex = onnxviz.explain(wide_model, wide_batch, "saliency", progress=False)
    smooth = ex.with_display(smooth=1.5)
    np.testing.assert_array_equal(smooth.attributions, ex.attributions)
    blurred = np.stack([cv2.GaussianBlur(m, (0, 0), 1.5) for m in ex.maps()])
    np.testing.assert_allclose(smooth.normalized(), onnxviz.viz.normalize_maps(blurred, False), atol=1e-6)
    assert not np.allclose(smooth.normalized(), ex.normalized())
    occlusion = onnxviz.explain(wide_model, wide_batch, "occlusion", window=(2,), stride=(2,), progress=False)
    shown = occlusion.with_display(display="absolute")
    assert shown.normalized().min() >= 0 and not shown.drawn()[2]
    with pytest.raises(onnxviz.OnnxvizError, match="display must be auto or absolute"):
        ex.with_display(display="rainbow")
    image = tmp_path / "w.png"
    cv2.imwrite(str(image), np.full((30, 50, 3), 90, np.uint8))
    onnx_path = tmp_path / "wide.onnx"
    onnx.save(wide_model.proto, onnx_path)
    run = CliRunner().invoke(cli, ["explain", str(onnx_path), str(image), "-m", "saliency", "--smooth", "1.5",
                                   "--preprocess", "unit", "--out", str(tmp_path / "out"), "-q"])
    assert run.exit_code == 0, run.output
    saved = onnxviz.Explanation.load(tmp_path / "out" / "saliency.npz")
    assert saved.extras["smooth"] == 1.5
