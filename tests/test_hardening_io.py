"""Issue 9's checklist for images and outputs: damaged images are named in one error, every legitimate kind of
image is read by one policy, and nothing is lost or half-written in the output folder."""

from __future__ import annotations

import dataclasses
import errno
import io
import os
import struct

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import onnxviz
from onnxviz import io as oio
from onnxviz.cli import cli
from onnxviz.demo import demo_images, demo_model_path
from onnxviz.viz.report import write_run

MODEL = str(demo_model_path())
RNG = np.random.default_rng(0)
RGB = Image.fromarray((RNG.random((20, 30, 3)) * 255).astype(np.uint8))


def encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def _zero_width_png() -> bytes:
    png = encode(RGB, "PNG")
    return png[:16] + struct.pack(">II", 0, 20) + png[24:]


# -- damaged images: one line naming the file ---------------------------------------------------------------
@pytest.mark.parametrize(("data", "expected"), [
    (b"", "is empty (0 bytes)"),
    (encode(RGB, "PNG")[:60], "is damaged or truncated"),
    (encode(RGB, "JPEG")[:200] + bytes(500), "is damaged or truncated"),
    (b"hello, I am text\n", "is not a PNG, JPEG, BMP, WebP or TIFF image"),
    (encode(RGB, "GIF"), "is not a PNG, JPEG, BMP, WebP or TIFF image"),
    (_zero_width_png(), "has no pixels: its header says 0x20"),
])
def test_damaged_images_are_named_in_one_line(data, expected, tmp_path):
    image = tmp_path / "broken photo.jpg"
    image.write_bytes(data)
    result = CliRunner().invoke(cli, ["explain", MODEL, str(image), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "broken photo.jpg" in lines[0] and expected in lines[0], result.stderr
    assert not (tmp_path / "out").exists()


# -- every legitimate image is read by the policy -----------------------------------------------------------
@pytest.mark.parametrize("kind", ["palette", "cmyk", "grey_alpha", "16bit_grey", "float_tiff"])
def test_palette_cmyk_alpha_16_bit_and_float_images_follow_the_policy(kind):
    reference = {  # what the policy says each should look like, computed with Pillow
        "palette": lambda: RGB.convert("P"),
        "cmyk": lambda: RGB.convert("CMYK"),
        "grey_alpha": lambda: RGB.convert("LA"),
        "16bit_grey": lambda: Image.fromarray(np.asarray(RGB.convert("L"), np.uint16) * 257),
        "float_tiff": lambda: Image.fromarray(np.asarray(RGB.convert("L"), np.float32) / 255),
    }[kind]()
    data = encode(reference, "JPEG" if kind == "cmyk" else "TIFF" if kind == "float_tiff" else "PNG")
    got = oio.decode_image(data, kind)
    if kind == "cmyk":
        expected = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")) / 255
    elif kind == "grey_alpha":
        grey, alpha = (np.asarray(reference, np.float32)[..., i] / 255 for i in (0, 1))
        expected = np.repeat((grey * alpha + 1 - alpha)[..., None], 3, axis=-1)  # composited on white
    elif kind in ("16bit_grey", "float_tiff"):
        expected = np.repeat(np.asarray(RGB.convert("L"))[..., None] / 255, 3, axis=-1)
    else:
        expected = np.asarray(reference.convert("RGB")) / 255
    assert got.shape == (20, 30, 3)
    np.testing.assert_allclose(got, expected, atol=1 / 255 + 1e-6)


@pytest.mark.parametrize("shape", [(1, 1), (1, 3000), (3000, 2), (4000, 6000)])
def test_tiny_extreme_and_large_images_are_resized_by_the_policy(shape, tmp_path):
    path = tmp_path / "img.png"
    Image.fromarray((RNG.random((*shape, 3)) * 255).astype(np.uint8)).save(path)
    model = onnxviz.load(MODEL)
    x = onnxviz.load_image([path], model)
    assert x.shape[0] == 1 and x.shape[-2:] == model.input_size and np.isfinite(x).all()


# -- outputs ------------------------------------------------------------------------------------------------
def _explain(out, *extra) -> object:
    return CliRunner().invoke(cli, ["explain", MODEL, str(demo_images()[0]), "-m", "saliency", "--out", str(out),
                                    "-q", *extra])


def test_existing_files_are_refused_before_any_work_unless_overwrite(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    calls = []
    monkeypatch.setattr(onnxviz.model, "open_model", lambda *a, **k: calls.append(a))  # never reached
    result = _explain(out)
    assert result.exit_code == 1 and "already holds 1 entries (keep.txt); pass --overwrite" in result.stderr
    assert calls == [] and sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    monkeypatch.undo()
    assert _explain(out, "--overwrite").exit_code == 0
    assert (out / "keep.txt").read_text() == "mine" and (out / "index.html").is_file()


def test_a_full_disk_is_one_error_and_leaves_no_partial_file(tmp_path, monkeypatch):
    real_fdopen = os.fdopen

    class Full:
        def __init__(self, fd, mode):
            self.f = real_fdopen(fd, mode)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fdopen", Full)
    result = _explain(tmp_path / "out")
    assert result.exit_code == 1 and "No space left on device" in result.stderr and "Traceback" not in result.output
    leftovers = [p.name for p in (tmp_path / "out").rglob("*")] if (tmp_path / "out").exists() else []
    assert not [n for n in leftovers if n.endswith(".part")], leftovers


def test_file_names_from_untrusted_text_are_sanitized_and_distinct(tmp_path):
    model = onnxviz.load(MODEL)
    ex = onnxviz.explain(model, [demo_images()[0]] * 3, "saliency", progress=False)
    ex = dataclasses.replace(ex, method="../../evil<script>")
    names = ["a/cat.png", "b/cat.png", "we<ird>:na|me ..png"]
    written = write_run(tmp_path / "out", [ex], names, "model", arrays=True)
    assert all(p.resolve().parent == (tmp_path / "out").resolve() for p in written)
    pngs = sorted(p.name for p in written if p.suffix == ".png")
    assert pngs == ["cat_2_evil_script.png", "cat_evil_script.png", "grid.png", "we_ird_na_me_evil_script.png"]
    assert oio.safe_filename("..") == "item" and oio.safe_filename("/etc/passwd") == "etc_passwd"


def test_8_and_16_bit_twins_give_the_same_heatmap(tmp_path, photos):
    bgr8 = (oio.resize(photos[0], 48, 64)[..., ::-1] * 255).round().astype(np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), bgr8)
    cv2.imwrite(str(tmp_path / "b.png"), bgr8.astype(np.uint16) * 257)
    model = onnxviz.load(MODEL)
    a, b = (onnxviz.explain(model, [tmp_path / n], "gradcam", progress=False) for n in ("a.png", "b.png"))
    np.testing.assert_array_equal(a.attributions, b.attributions)
