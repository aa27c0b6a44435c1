"""TCAV (issue 22): an analytic oracle (a network whose class score is a known direction of its layer, and a
concept that lies along it), Captum's TCAV scores for the same concept vector on the same network, and the
command line (JSON, bar chart, refusals)."""

from __future__ import annotations

import contextlib
import io
import json
import warnings

import cv2
import numpy as np
import pytest

import onnxviz

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
nn = torch.nn
H, W = 12, 16


class ColourNet(nn.Module):
    """layer = each channel's mean (the image's colour); class 0 rises with red, class 1 falls with it."""

    def __init__(self):
        super().__init__()
        self.pool, self.flat = nn.AdaptiveAvgPool2d(1), nn.Flatten()
        self.head = nn.Linear(3, 2)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[2.0, 0.0, 0.0], [-2.0, 0.0, 0.0]]))
            self.head.bias.zero_()

    def forward(self, x):
        return self.head(self.flat(self.pool(x)))


def _export(net, path, height=H, width=W) -> None:
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.rand(1, 3, height, width),), str(path), dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})


def _write(folder, images) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    for k, image in enumerate(images):
        cv2.imwrite(str(folder / f"{k:03d}.png"), (image[..., ::-1] * 255).astype(np.uint8))
    return str(folder)


@pytest.fixture(scope="module")
def colours(tmp_path_factory):
    root = tmp_path_factory.mktemp("tcav")
    rng = np.random.default_rng(0)
    red = rng.random((16, H, W, 3)) * 0.3
    red[..., 0] += 0.7  # a strong red channel
    random = rng.random((24, 1, 1, 3)) * 0.8 + rng.random((24, H, W, 3)) * 0.2  # each image its own colour
    path = root / "colour.onnx"
    _export(ColourNet().eval(), path)
    return root, path, _write(root / "red", red), _write(root / "random", random), _write(root / "test", rng.random(
        (6, H, W, 3)))


def test_a_concept_along_the_class_direction_scores_one_and_against_it_zero(colours):
    from onnxviz.tcav import tcav

    _root, path, red, random, test = colours
    model = onnxviz.load(path, preprocessing="unit")
    layer = next(layer.name for layer in model.layers if layer.op_type == "Flatten")
    for target, expected in ((0, 1.0), (1, 0.0)):
        result = tcav(model, [test], {"red": [red]}, [[random]], [layer], target=target, runs=6)
        (found,) = result.results
        np.testing.assert_array_equal(found.scores, expected)
        assert found.accuracies.min() >= 0.9
        assert found.significant() and 0.0 < found.random_scores.mean() < 1.0
        assert (found.magnitudes > 0).all() == (target == 0)


def test_directional_scores_equal_captum_for_the_same_vector(tmp_path):
    from captum.concept import TCAV, Classifier, Concept

    from models.exports import FlattenHead
    from onnxviz.tcav import directional_scores

    net = FlattenHead(H, W, seed=2).eval()
    path = tmp_path / "flat.onnx"
    _export(net, path)
    model = onnxviz.load(path, preprocessing="unit")
    layer = [layer.name for layer in model.layers if layer.op_type == "Relu"][-1]
    x = np.random.default_rng(1).random((5, 3, H, W)).astype(np.float32)
    vector = np.random.default_rng(2).standard_normal(8 * (H // 2) * (W // 2))
    ctx = onnxviz.context.Context(model, onnxviz.Target(), np.full(5, 3), batch_size=8)
    sign, magnitude = directional_scores(ctx.grad(x, wrt=layer), vector)

    class Fixed(Classifier):  # Captum trains its own classifier; this one gives it our concept vector
        def __init__(self):
            pass

        def train_and_eval(self, dataloader, **kwargs):
            return {"accs": torch.tensor(1.0)}

        def weights(self):
            return torch.from_numpy(np.stack([vector, -vector])).float()

        def classes(self):
            return [0, 1]

    def data():
        return iter([torch.rand(4, 3, H, W)])

    concept, random = Concept(0, "concept", data()), Concept(1, "random", data())
    captum = TCAV(net, ["features"], classifier=Fixed(), save_path=str(tmp_path / "cav"))
    found = captum.interpret(torch.from_numpy(x), [[concept, random]], target=3)["0-1"]["features"]
    assert sign == pytest.approx(float(found["sign_count"][0]), abs=1e-6)
    assert magnitude == pytest.approx(float(found["magnitude"][0]), rel=1e-4)


def test_cli_writes_the_scores_and_the_chart_and_refuses_bad_concepts(colours, tmp_path):
    from click.testing import CliRunner

    from onnxviz.cli import cli

    _root, path, red, random, test = colours
    model = onnxviz.load(path, preprocessing="unit")
    layer = next(layer.name for layer in model.layers if layer.op_type == "Flatten")
    runner = CliRunner()
    ok = runner.invoke(cli, ["tcav", str(path), test, "--concept", f"red={red}", "--random", random, "--layer", layer,
                             "--target", "0", "--runs", "3", "--preprocess", "unit", "--out", str(tmp_path / "o")])
    assert ok.exit_code == 0, ok.output
    saved = json.loads((tmp_path / "o" / "tcav.json").read_text())
    assert saved["results"][0]["scores"] == [1.0, 1.0, 1.0] and "red" in ok.output
    chart = cv2.imread(str(tmp_path / "o" / "tcav.png"))
    assert chart is not None and chart.std() > 10
    bad = runner.invoke(cli, ["tcav", str(path), test, "--concept", red, "--random", random, "--layer", layer,
                              "--preprocess", "unit", "--out", str(tmp_path / "o2")])
    assert bad.exit_code != 0 and "NAME=FOLDER" in bad.output and "Traceback" not in bad.output
    few = tmp_path / "few"
    _write(few, np.zeros((2, H, W, 3)))
    short = runner.invoke(cli, ["tcav", str(path), test, "--concept", f"empty={few}", "--random", random, "--layer",
                                layer, "--preprocess", "unit", "--out", str(tmp_path / "o3")])
    assert short.exit_code != 0 and "at least 4" in short.output
