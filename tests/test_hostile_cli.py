"""Issue 15: hostile metadata, outputs no method can use, text inputs and terminal escapes, across every command:
each run either works or ends with one clear line (warnings are `warning:` lines), never a traceback."""

from __future__ import annotations

import cv2
import hostile_models as hm
import numpy as np
import onnx
import pytest
from click.testing import CliRunner

import onnxviz
from onnxviz.cli import cli

COMMANDS = {
    "info": lambda m, i, o: ["info", m, "--no-torch"],
    "explain": lambda m, i, o: ["explain", m, i, "-m", "occlusion", "-o", "window", "2", "--out", o, "-q"],
    "explain saliency": lambda m, i, o: ["explain", m, i, "-m", "saliency", "--out", o, "-q"],
    "report": lambda m, i, o: ["report", m, i, "-m", "occlusion", "-o", "window", "2", "--out", o, "-q"],
    "evaluate": lambda m, i, o: ["evaluate", m, i, "-m", "saliency", "--steps", "4", "--out", o],
    "compare": lambda m, i, o: ["compare", m, m, i, "-m", "saliency", "--out", o, "-q"],
    "attack": lambda m, i, o: ["attack", m, i, "-m", "square", "--max-queries", "20", "--out", o, "-q"],
    "robustness": lambda m, i, o: ["robustness", m, i, "--levels", "2", "--out", o],
    "batch": lambda m, i, o: ["batch", m, i, "-m", "saliency", "--out", o, "-q"],
    "synthesize": lambda m, i, o: ["synthesize", m, "--objective", "class:0", "--steps", "2", "--out", o, "-q"],
}
MODELS = {
    **{f"metadata {k}": (lambda v=v: hm.with_metadata(hm.linear(), "onnxviz.preprocessing", v))
       for k, v in hm.BAD_PREPROCESSING.items()},
    **{f"output {k}": (lambda k=k: hm.odd_output(k))
       for k in ("scalar", "no classes", "batch of one", "transposed", "NaN logits", "integer labels")},
    "string input": hm.string_input,
}
# what each run must say (None: it works, maybe with warnings); unlisted models must work on every command
EXPECTED = {
    "output scalar": "is a single number for the whole batch",
    "output no classes": "no classes to explain",
    "output transposed": "its first axis is not the batch",
    "output integer labels": "holds int64 values (class labels or indices?), not scores",
    "string input": "is text (strings): onnxviz explains models whose input is an image",
}


def _run(args: list[str]):
    result = CliRunner().invoke(cli, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{args[0]}: {type(result.exception).__name__}: {result.exception}")
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("warning:")]
    return result, lines


@pytest.mark.parametrize("name", list(MODELS))
def test_every_command_works_or_says_why_in_one_line(name, tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(MODELS[name]().SerializeToString())
    image = tmp_path / "image.png"
    cv2.imwrite(str(image), (np.random.default_rng(0).random((8, 8)) * 255).astype(np.uint8))
    expected = EXPECTED.get(name)
    for command, make in COMMANDS.items():
        result, lines = _run(make(str(path), str(image), str(tmp_path / command.replace(" ", "_"))))
        if command == "info" and name.startswith("output"):
            assert result.exit_code == 0, result.output  # describing a model needs no usable output
            continue
        wanted = expected
        if name == "output NaN logits":  # explained with a warning; attacks and noise curves need finite scores
            wanted = "is NaN or infinite for image(s) [0]" if command in ("attack", "robustness") else None
        if wanted is None:
            assert result.exit_code == 0, f"{command}: {result.output}"
            continue
        assert result.exit_code == 1, f"{command}: {result.output}"
        assert len(lines) == 1 and wanted in lines[0], f"{command}: {result.stderr}"


@pytest.mark.parametrize("kind", sorted(hm.BAD_PREPROCESSING))
def test_bad_preprocessing_metadata_is_ignored_with_the_reason(kind):
    with pytest.warns(UserWarning, match="metadata is ignored"):
        model = onnxviz.load(hm.with_metadata(hm.linear(), "onnxviz.preprocessing", hm.BAD_PREPROCESSING[kind]))
        pre = model.preprocessing
    assert pre.mean == (0.0,) and pre.std == (1.0,) and pre.size is None  # the grey default, not the metadata
    assert model.preprocessing_source.startswith("default unit: the model's onnxviz.preprocessing metadata is "
                                                  "ignored")


def test_good_metadata_is_used_and_said_so():
    model = onnxviz.load(hm.with_metadata(hm.linear(), "onnxviz.preprocessing",
                                          '{"preset": "caffe", "size": [48, 64]}'))
    assert model.preprocessing.scale == 255.0 and model.preprocessing.size == (48, 64)
    assert model.preprocessing_source == "metadata"
    model.use_preprocessing("symmetric")
    assert model.preprocessing.mean == (0.5,) and model.preprocessing_source == "given"


ESCAPES = "\x1b[2J\x1b[H\x1b[1;31mverified safe\x1b[0m\x1b]0;pwned\x07\u202eexe.fdp"


def test_terminal_escapes_from_a_model_or_a_file_name_are_shown_as_text(tmp_path):
    model = hm.linear()
    model.producer_name = ESCAPES
    model.graph.node[0].output[0] = "f" + ESCAPES
    model.graph.node[1].input[0] = "f" + ESCAPES
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    image = tmp_path / f"cat{ESCAPES.replace('/', '_')}.png"
    cv2.imwrite(str(tmp_path / "plain.png"), np.full((8, 8), 200, np.uint8))
    (tmp_path / "plain.png").rename(image)
    for args in (["info", str(path), "--no-torch"], ["layers", str(path)],
                 ["explain", str(path), str(image), "-m", "occlusion", "-o", "window", "2", "--out",
                  str(tmp_path / "out")],
                 ["explain", str(path), str(tmp_path / f"missing{ESCAPES}.png"), "--out", str(tmp_path / "o2")]):
        result = CliRunner().invoke(cli, args)
        shown = result.output + result.stderr
        assert not any(c in shown for c in "\x1b\x07\u202e"), repr(shown[:300])
        assert "verified safe" in shown and "\\x1b]0;pwned\\x07\\u202e" in shown  # visible, as text
