"""The command line, through click's CliRunner: each command on the bundled model."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import onnxviz
from onnxviz.cli import cli
from onnxviz.demo import demo_images, demo_model_path

MODEL = str(demo_model_path())
IMAGES = [str(p) for p in demo_images()]


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


def test_help_lists_the_commands(run):
    result = run("--help")
    assert result.exit_code == 0
    for command in ("demo", "info", "layers", "methods", "explain"):
        assert command in result.output


def test_info_reports_layout_softmax_and_parity(run):
    result = run("info", MODEL)
    assert result.exit_code == 0, result.output
    assert "layout NCHW" in result.output
    assert "converted; max |onnxruntime - torch|" in result.output and ": ok" in result.output
    assert "CAM layer  /features/features.7/Relu_output_0" in result.output


def test_layers_marks_the_default_cam_layer(run):
    result = run("layers", MODEL)
    assert result.exit_code == 0
    marked = [line for line in result.output.splitlines() if line.startswith("* /")]
    assert marked == [next(line for line in marked)]
    assert "/features/features.7/Relu_output_0" in marked[0]


def test_methods_lists_builtins_and_shows_options(run):
    result = run("methods")
    for name in ("saliency", "gradcam", "occlusion"):
        assert name in result.output
    detail = run("methods", "occlusion")
    assert "window" in detail.output and "stride" in detail.output and "arxiv.org" in detail.output


def test_explain_writes_overlays_grid_arrays_and_index(run, tmp_path):
    out = tmp_path / "out"
    result = run("explain", MODEL, *IMAGES[:2], "-m", "gradcam", "-m", "occlusion", "-m", "saliency",
                 "-o", "occlusion.window", "6", "-o", "stride", "3", "--target", "top1", "--out", str(out), "-q")
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert {"grid.png", "index.html", "gradcam.npz", "occlusion.npz", "saliency.npz"} <= names
    assert "digit_0_gradcam.png" in names and "digit_3_saliency.png" in names
    ex = onnxviz.Explanation.load(out / "occlusion.npz")
    assert ex.options["window"] == [6] and ex.options["stride"] == [3]
    direct = onnxviz.explain(MODEL, IMAGES[:2], "occlusion", window=(6,), stride=(3,), progress=False)
    np.testing.assert_allclose(ex.attributions, direct.attributions, atol=1e-6)


def test_explain_with_a_target_per_image_and_a_layer(run, tmp_path):
    result = run("explain", MODEL, *IMAGES[:2], "--target", "3,5", "--layer", "last_conv", "--out", str(tmp_path), "-q")
    assert result.exit_code == 0, result.output
    ex = onnxviz.Explanation.load(tmp_path / "gradcam.npz")
    assert ex.targets.tolist() == [3, 5]
    assert ex.layer == "/features/features.6/Conv_output_0"


def test_demo_writes_an_index_with_the_grid(run, tmp_path):
    result = run("demo", "--out", str(tmp_path), "-q")
    assert result.exit_code == 0, result.output
    html = (tmp_path / "index.html").read_text()
    assert "data:image/png;base64," in html and "gradcam" in html and "occlusion" in html
    assert (tmp_path / "grid.png").stat().st_size > 10_000
