"""No silent guesses: a model whose graph leaves the input size open and carries no preprocessing metadata is
explained with visible warnings (terminal, result, pages, `info`), `--size` and `--preprocess` correct it on every
command, and a batch read with a preprocessing remembers it (issue 17, items 1, 2 and 6)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

import onnxviz
from onnxviz.cli import cli
from onnxviz.cli.app import COMMANDS
from onnxviz.errors import GuessWarning


def _open_size_net() -> onnx.ModelProto:
    """(N, 3, H, W) with H and W open -> Conv -> Relu -> GlobalAveragePool -> Gemm: 2 classes, no metadata."""
    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2])
    nodes = [helper.make_node("Conv", ["x", "Wc"], ["conv"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
             helper.make_node("Relu", ["conv"], ["act"]),
             helper.make_node("GlobalAveragePool", ["act"], ["pool"]),
             helper.make_node("Flatten", ["pool"], ["flat"], axis=1),
             helper.make_node("Gemm", ["flat", "Wf"], ["logits"], transB=1)]
    inits = [numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "Wc"),
             numpy_helper.from_array(rng.standard_normal((2, 4)).astype(np.float32), "Wf")]
    model = helper.make_model(helper.make_graph(nodes, "open", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


@pytest.fixture
def open_model(tmp_path):
    path = tmp_path / "open.onnx"
    onnx.save(_open_size_net(), path)
    return path


@pytest.fixture
def photo(tmp_path, photos):
    import cv2

    path = tmp_path / "cat.png"
    cv2.imwrite(str(path), (photos[0][..., ::-1] * 255).astype(np.uint8))
    return path


def test_the_guesses_are_named_with_their_fix(open_model):
    model = onnxviz.load(open_model)
    notes = model.assumptions()
    assert model.input_size == (224, 224) and len(notes) == 2
    assert "preprocessing: default imagenet (no metadata: a guess)" in notes[0] and "--preprocess" in notes[0]
    assert "input size: default 224x224" in notes[1] and "--size HxW" in notes[1]
    model.use_preprocessing("imagenet", size=(48, 96))
    assert model.input_size == (48, 96) and model.size_source == "given" and model.assumptions() == []


def test_reading_images_warns_and_the_result_and_pages_record_it(open_model, photo, tmp_path):
    model = onnxviz.load(open_model)
    with pytest.warns(GuessWarning, match="input size: default 224x224"):
        x = onnxviz.load_image([photo], model)
    ex = onnxviz.explain(model, x, "gradcam", progress=False)
    assert len(ex.extras["assumptions"]) == 2
    from onnxviz.viz.report import write_run

    write_run(tmp_path / "out", [ex], [str(photo)], model.name)
    page = (tmp_path / "out" / "index.html").read_text()
    assert "onnxviz guessed how to feed this model" in page and "--size HxW" in page
    assert onnxviz.Explanation.load(ex.save(tmp_path / "ex.npz")).extras["assumptions"] == ex.extras["assumptions"]


def test_the_cli_warns_on_a_guess_and_size_and_preprocess_silence_it(open_model, photo, tmp_path):
    runner = CliRunner()
    guessed = runner.invoke(cli, ["explain", str(open_model), str(photo), "-m", "gradcam", "--out",
                                  str(tmp_path / "a"), "-q"])
    assert guessed.exit_code == 0, guessed.output
    assert "warning: open: input size: default 224x224" in guessed.output
    assert "warning: open: preprocessing: default imagenet" in guessed.output
    told = runner.invoke(cli, ["explain", str(open_model), str(photo), "-m", "gradcam", "--size", "48x96",
                               "--preprocess", "imagenet", "--out", str(tmp_path / "b"), "-q"])
    assert told.exit_code == 0, told.output
    assert "warning" not in told.output
    saved = np.load(tmp_path / "b" / "gradcam.npz")
    assert saved["inputs"].shape == (1, 3, 48, 96) and saved["attributions"].shape == (1, 48, 96)
    info = runner.invoke(cli, ["info", str(open_model), "--no-torch", "--brief"])
    assert info.exit_code == 0 and info.output.count("GUESS") == 2, info.output
    info = runner.invoke(cli, ["info", str(open_model), "--no-torch", "--brief", "--size", "48x96"])
    assert "size: given" in info.output and info.output.count("GUESS") == 1


def test_a_size_the_graph_fixes_cannot_be_changed_and_a_bad_size_is_one_line(photo, tmp_path):
    from onnxviz.bundled import demo_model_path

    runner = CliRunner()
    fixed = runner.invoke(cli, ["explain", str(demo_model_path()), str(photo), "--size", "64x64", "--out",
                                str(tmp_path / "a")])
    assert fixed.exit_code == 1 and "fixed at 32x32; --size 64x64 cannot change it" in fixed.output
    bad = runner.invoke(cli, ["explain", str(demo_model_path()), str(photo), "--size", "big", "--out",
                              str(tmp_path / "b")])
    assert bad.exit_code == 1 and "--size takes HEIGHTxWIDTH" in bad.output and "Traceback" not in bad.output


@pytest.mark.parametrize("command", sorted(set(COMMANDS) - {"demo", "methods"}))
def test_every_command_that_reads_images_takes_size_and_preprocess(command):
    runner = CliRunner()
    group = runner.invoke(cli, [command, "--help"])
    if command == "inspect":
        for sub in ("kernels", "features", "embed", "top-patches"):
            text = runner.invoke(cli, [command, sub, "--help"]).output
            assert "--size" in text and "--preprocess" in text, sub
        return
    assert "--size HxW" in group.output and "--preprocess" in group.output and "--mean" in group.output


def test_a_batch_read_with_a_preprocessing_is_drawn_with_it(photo):
    """load_image(..., preprocessing="caffe") then explain without it: the overlay's photo is the photo, not a
    posterized false-colour one (the explanation uses the preprocessing the batch was read with)."""
    from onnxviz.bundled import demo_model_path
    from onnxviz.reading import image_space

    model = onnxviz.load(demo_model_path())
    x = onnxviz.load_image([photo], model, preprocessing="caffe")
    ex = onnxviz.explain(model, x, "occlusion", window=(8,), stride=(8,), progress=False)
    assert ex.preprocessing["scale"] == 255.0 and ex.preprocessing["channel_order"] == "BGR"
    seen, _ = image_space([photo], model)
    np.testing.assert_allclose(ex.images()[0], np.repeat(seen[0], 3, axis=-1), atol=1e-4)
    assert x[:1].preprocessing is x.preprocessing  # slices keep it


def _ocr_like_net() -> onnx.ModelProto:
    """(1, 1, 64, W): the height fixed, the width open, as OCR recognizers are exported."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 64, "W"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])
    nodes = [helper.make_node("Conv", ["x", "Wc"], ["conv"], kernel_shape=[64, 3]),  # fails unless H == 64
             helper.make_node("GlobalAveragePool", ["conv"], ["pool"]),
             helper.make_node("Flatten", ["pool"], ["y"], axis=1)]
    inits = [numpy_helper.from_array(np.ones((2, 1, 64, 3), np.float32), "Wc")]
    model = helper.make_model(helper.make_graph(nodes, "ocr", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_a_side_the_graph_fixes_is_kept_and_only_the_open_one_is_guessed(tmp_path, photo):
    path = tmp_path / "ocr.onnx"
    onnx.save(_ocr_like_net(), path)
    model = onnxviz.load(path)
    assert model.input_size == (64, 224)
    assert "default width 224 (the graph fixes the height at 64" in model.size_source
    model.use_preprocessing(size=(64, 320))
    assert model.input_size == (64, 320) and model.size_source == "given"
    with pytest.raises(onnxviz.OptionError, match="input height is fixed at 64"):
        model.use_preprocessing(size=(32, 320))
    runner = CliRunner()
    info = runner.invoke(cli, ["info", str(path), "--no-torch", "--brief"])
    assert info.exit_code == 0 and "size 64x224" in info.output, info.output
    run = runner.invoke(cli, ["explain", str(path), str(photo), "-m", "occlusion", "-o", "window", "8",
                              "--size", "64x96", "--preprocess", "unit", "--out", str(tmp_path / "out"), "-q"])
    assert run.exit_code == 0, run.output
    assert np.load(tmp_path / "out" / "occlusion.npz")["inputs"].shape == (1, 1, 64, 96)


def test_onnxruntime_errors_keep_the_line_that_says_what_is_wrong(tmp_path):
    path = tmp_path / "ocr.onnx"
    onnx.save(_ocr_like_net(), path)
    model = onnxviz.load(path)
    with pytest.raises(onnxviz.ModelError, match=r"for the following indices.*index: 2 Got: 32 Expected: 64"):
        model.run(np.zeros((1, 1, 32, 50), np.float32), ("y",))


def test_a_normalization_that_reshapes_an_output_is_not_adopted(monkeypatch, open_model):
    """onnxslim once turned ddddocr's (1, 229880) output into (28, 1, 8210): the same values, another shape. The
    comparison must refuse it instead of failing with a broadcasting traceback."""
    import onnxviz.model as model_module

    def reshaping(original):
        candidate = onnx.ModelProto()
        candidate.CopyFrom(original)
        out = candidate.graph.output[0].name
        for node in candidate.graph.node:
            node.output[:] = [f"{o}_pre" if o == out else o for o in node.output]
        candidate.graph.node.append(helper.make_node("Flatten", [f"{out}_pre"], [out], axis=0))  # (2, 2) -> (1, 4)
        del candidate.graph.output[0].type.tensor_type.shape.dim[:]
        return candidate, "onnxslim"

    monkeypatch.setattr(model_module, "_normalize", reshaping)
    model = onnxviz.load(open_model)
    assert model.normalization == "kept the original graph (onnxslim changed the outputs)"


def test_a_batch_run_says_its_guesses_once_and_on_its_summary(open_model, photo, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for k in range(3):
        (folder / f"p{k}.png").write_bytes(photo.read_bytes())
    result = CliRunner().invoke(cli, ["batch", str(open_model), str(folder), "-m", "occlusion", "-o", "window", "32",
                                      "--out", str(tmp_path / "batch"), "-q"])
    assert result.exit_code == 0, result.output
    assert result.output.count("warning: open: input size: default 224x224") == 1, result.output
    assert "onnxviz guessed how to feed this model" in (tmp_path / "batch" / "summary.html").read_text()


def test_a_batch_run_with_a_size_resumes(open_model, photo, tmp_path):
    """run.json keeps the settings as JSON (a size is a list there): the same command must resume, not refuse."""
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "p.png").write_bytes(photo.read_bytes())
    command = ["batch", str(open_model), str(folder), "-m", "occlusion", "-o", "window", "16", "--size", "48x64",
               "--preprocess", "unit", "--out", str(tmp_path / "batch"), "-q"]
    assert CliRunner().invoke(cli, command).exit_code == 0
    again = CliRunner().invoke(cli, command)
    assert again.exit_code == 0 and "skipped 1" in again.output, again.output
