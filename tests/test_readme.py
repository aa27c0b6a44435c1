"""The README's examples run: its Python block and its `onnxviz` command lines, on a copy of the bundled model
named model.onnx and a real photo named cat.png."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from onnxviz.cli import cli
from onnxviz.demo import demo_model_path

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


@pytest.fixture
def workspace(tmp_path, monkeypatch, photos, build_reference, tiny_vit, tiny_yolo):
    from models.segmentation import scenes

    shutil.copy(demo_model_path(), tmp_path / "model.onnx")
    cv2.imwrite(str(tmp_path / "cat.png"), (photos[0][..., ::-1] * 255).astype("uint8"))
    shutil.copy(build_reference("tiny_seg").path, tmp_path / "seg.onnx")
    shutil.copy(tiny_vit, tmp_path / "vit.onnx")
    shutil.copy(tiny_yolo, tmp_path / "yolo.onnx")
    images, labels = scenes(1, seed=3)
    photo = (320, 240)  # a street photo larger than the 32 x 32 model input, and not square
    cv2.imwrite(str(tmp_path / "street.png"), cv2.resize((images[0, 0] * 255).astype("uint8"), photo,
                                                         interpolation=cv2.INTER_NEAREST))
    cv2.imwrite(str(tmp_path / "road_mask.png"), cv2.resize((labels[0] == 1).astype("uint8") * 255, photo,
                                                            interpolation=cv2.INTER_NEAREST))
    rng = np.random.default_rng(0)  # the TCAV example's concept and random folders
    for folder, count in (("stripes", 8), ("random", 16)):
        (tmp_path / "concepts" / folder).mkdir(parents=True)
        for k in range(count):
            image = rng.random((32, 32, 3))
            if folder == "stripes":
                image[::4] = 1.0
            cv2.imwrite(str(tmp_path / "concepts" / folder / f"{k}.png"), (image * 255).astype("uint8"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_python_example_runs(workspace):
    (code,) = _blocks("python")
    exec(compile(code, "README.md", "exec"), {})
    assert (workspace / "cat_gradcam.png").is_file() and (workspace / "cat_gradcam.npz").is_file()


def test_cli_examples_run(workspace):
    commands = [line for block in _blocks("bash") for line in block.splitlines() if line.startswith("onnxviz ")]
    assert len(commands) >= 5
    for line in commands:
        result = CliRunner().invoke(cli, shlex.split(line, comments=True)[1:])
        assert result.exit_code == 0, f"{line}\n{result.output}"
    assert (workspace / "out" / "explain" / "index.html").is_file()


def test_the_test_command_is_what_ci_runs():
    (setup,) = [b for b in _blocks("bash") if "pytest" in b]
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert setup.strip() in ci


def test_ci_runs_the_readmes_develop_and_test_lines_in_order():
    """CI must run what the README tells a developer to run, nothing less (a line missing from .ci/run would let a
    reference test skip there unnoticed)."""
    section = README[README.index("Develop and test"):]
    block = _blocks("bash")[[b in section for b in _blocks("bash")].index(True)]
    lines = [line.strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]
    ci = Path(__file__).resolve().parent.parent / ".ci" / "run"
    script = [line.strip() for line in ci.read_text().splitlines()]
    found = [script.index(line) for line in lines]
    assert lines and found == sorted(found)
