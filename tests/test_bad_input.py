"""Bad input: one clear line on stderr, a non-zero exit, no traceback, nothing written to --out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import onnxviz
from onnxviz.cli import cli
from onnxviz.demo import demo_images, demo_model_path

MODEL = demo_model_path()
IMAGE = str(demo_images()[0])


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    text = tmp_path / "notes.onnx"
    text.write_text("this is not a model\n")
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(MODEL.read_bytes()[: MODEL.stat().st_size // 2])
    fake_image = tmp_path / "photo.png"
    fake_image.write_text("not an image")
    return {"text": text, "truncated": truncated, "fake_image": fake_image}


def _fails(args: list[str], expected: str, out: Path) -> None:
    result = CliRunner().invoke(cli, [*args, "--out", str(out)] if args[0] == "explain" else args)
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.output + result.stderr
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["info", "missing.onnx"], "model file not found: missing.onnx"),
        (["info", "{text}"], "is not a readable ONNX model"),
        (["info", "{truncated}"], "is not a readable ONNX model"),
        (["explain", "{model}", "{fake_image}"], "is not a PNG, JPEG, BMP, WebP or TIFF image"),
        (["explain", "{model}", "missing.png"], "image not found: missing.png"),
        (["explain", "{model}", "{image}", "-m", "gradcma"], "unknown method 'gradcma'. Did you mean: gradcam"),
        (["explain", "{model}", "{image}", "--layer", "/features/features.7/Rel"], "Run `onnxviz layers"),
        (["explain", "{model}", "{image}", "--target", "10"], "the model has 10 classes (0..9)"),
        (["explain", "{model}", "{image}", "--target", "cat"], "neither a class index nor top1"),
        (["explain", "{model}", "{image}", "-m", "occlusion", "-o", "windw", "3"], "has an option 'windw'"),
        (["explain", "{model}", "{image}", "-m", "occlusion", "-o", "window", "x"], "'x' is not an integer"),
        (["explain", "{model}", "{image}", "-m", "saliency", "--layer", "auto"], "--layer is only used"),
        (["methods", "salency"], "Did you mean: saliency?"),
    ],
)
def test_bad_input_gets_one_clear_line(args, expected, files, tmp_path):
    values = {**{k: str(v) for k, v in files.items()}, "model": str(MODEL), "image": IMAGE}
    _fails([a.format(**values) for a in args], expected, tmp_path / "out")


def test_unknown_layer_suggests_close_matches(digits_model):
    with pytest.raises(onnxviz.LayerError, match=r"Did you mean: /features/features\.7/Relu_output_0"):
        digits_model.layer("/features/features.7/Relu_output")


def test_unknown_option_lists_the_valid_ones(digits_model, digits_batch):
    with pytest.raises(onnxviz.OptionError, match="Valid options: window, stride, baseline"):
        onnxviz.explain(digits_model, digits_batch, "occlusion", windows=3)


def test_debug_shows_the_traceback():
    result = CliRunner().invoke(cli, ["--debug", "info", "missing.onnx"])
    assert isinstance(result.exception, onnxviz.ModelError)


# torch made unimportable as on a machine without it: a finder that refuses it and find_spec that reports it
# absent (a None in sys.modules would look installed to libraries that check sys.modules, as scipy's array API does)
BLOCK_TORCH = """import sys, importlib.util
ABSENT = ('torch', 'onnx2torch', 'torchvision')
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.partition('.')[0] in ABSENT:
            raise ModuleNotFoundError(f'No module named {name!r}', name=name)
sys.meta_path.insert(0, NoTorch())
_find_spec = importlib.util.find_spec
importlib.util.find_spec = lambda name, package=None: (
    None if name.partition('.')[0] in ABSENT else _find_spec(name, package))
"""


def _without_torch(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH + code], capture_output=True, text=True, timeout=300)


def test_without_torch_forward_methods_work_and_gradient_methods_say_how_to_install(tmp_path):
    code = (
        "import onnxviz; from onnxviz.demo import demo_model_path, demo_images; "
        "m = onnxviz.load(demo_model_path()); "
        "ex = onnxviz.explain(m, demo_images()[:2], 'occlusion', window=(8,), stride=(8,), progress=False); "
        "print('occlusion', ex.attributions.shape)"
    )
    done = _without_torch(code)
    assert done.returncode == 0, done.stderr
    assert "occlusion (2, 1, 32, 32)" in done.stdout
    estimated = _without_torch(code.replace("'occlusion', window=(8,), stride=(8,)", "'saliency', gradient='estimate'")
                               .replace("print('occlusion'", "print(ex.backend"))
    assert estimated.returncode == 0, estimated.stderr
    assert "onnxruntime (estimated gradient) (2, 1, 32, 32)" in estimated.stdout
    recipro = _without_torch(code.replace("'occlusion', window=(8,), stride=(8,)", "'reciprocam'"))
    assert recipro.returncode == 0, recipro.stderr
    assert "occlusion (2, 32, 32)" in recipro.stdout  # a map, resized to the input

    cli_code = f"from onnxviz.cli import main; sys.argv = ['onnxviz', 'explain', {str(MODEL)!r}, {IMAGE!r}, " \
               f"'-m', 'saliency', '--out', {str(tmp_path / 'out')!r}]; main()"
    done = _without_torch(cli_code)
    assert done.returncode == 1
    assert 'pip install "onnxviz[torch]"' in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()
    demo = _without_torch(f"from onnxviz.cli import main; sys.argv = ['onnxviz', 'demo', '-q', '--out', "
                          f"{str(tmp_path / 'demo')!r}]; main()")
    assert demo.returncode == 0, demo.stderr
    assert "saliency and gradcam skipped" in demo.stderr
    assert (tmp_path / "demo" / "index.html").is_file()


def test_without_torch_attention_rollout_runs_and_its_gradient_variant_says_how_to_install(tiny_vit):
    code = (f"import onnxviz; m = onnxviz.load({str(tiny_vit)!r}, preprocessing='unit'); "
            "print(onnxviz.explain(m, m.probe_input(1), 'rollout', progress=False).raw.shape)")
    done = _without_torch(code)
    assert done.returncode == 0, done.stderr
    assert "(1, 4, 4)" in done.stdout
    gradient = _without_torch(code.replace("'rollout',", "'rollout', variant='gradient',"))
    assert gradient.returncode != 0 and 'pip install "onnxviz[torch]"' in gradient.stderr


def test_parity_beyond_tolerance_refuses_exact_gradients(digits_batch):
    model = onnxviz.load(demo_model_path(), parity_tolerance=1e-12)
    with pytest.raises(onnxviz.ConversionError, match="raise the tolerance"):
        onnxviz.explain(model, digits_batch, "saliency", gradient="exact")
    with pytest.raises(onnxviz.ConversionError, match="raise the tolerance"):
        onnxviz.explain(model, digits_batch, "gradcam")  # layer gradients: no estimate can stand in
    assert onnxviz.explain(model, digits_batch[:1], "occlusion", window=(8,), stride=(8,)).attributions.shape[0] == 1


def test_bytes_and_modelproto_load_like_paths(digits_batch):
    import onnx

    a = onnxviz.load(MODEL.read_bytes())
    b = onnxviz.load(onnx.load(str(MODEL)))
    assert a.hash == b.hash == onnxviz.load(MODEL).hash
    np.testing.assert_allclose(a.ort.run(digits_batch, tuple(a.outputs))[0],
                               b.ort.run(digits_batch, tuple(b.outputs))[0])


def test_an_output_folder_that_cannot_be_written_stops_the_run_before_any_work(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    for args in (["explain", str(MODEL), IMAGE, "-m", "occlusion"], ["attack", str(MODEL), IMAGE, "-m", "fgsm"],
                 ["synthesize", str(MODEL), "--objective", "class:1"], ["inspect", "kernels", str(MODEL)],
                 ["report", str(MODEL), IMAGE], ["demo"]):
        result = CliRunner().invoke(cli, [*args, "--out", str(blocker / "out")])
        assert result.exit_code == 1, (args, result.output)
        assert "cannot write to the output folder" in result.output and "Traceback" not in result.output
