"""The HTML pages in a real headless browser (Debian's Chromium driven by Playwright): they load without
console errors, every image renders, and strings from the model are shown, never run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
from click.testing import CliRunner

from onnxviz.cli import cli
from onnxviz.demo import demo_model_path


def _open(browser, path: Path) -> tuple[object, list[str]]:
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")
    return page, errors


def _all_images_render(page) -> list[int]:
    return page.evaluate("[...document.images].map(i => i.complete ? i.naturalWidth : 0)")


def test_the_demo_pages_load_cleanly_and_every_image_renders(browser, tmp_path):
    run = CliRunner().invoke(cli, ["demo", "-q", "--out", str(tmp_path)])
    assert run.exit_code == 0, run.output
    for name in ("report.html", "index.html"):
        page, errors = _open(browser, tmp_path / name)
        widths = _all_images_render(page)
        assert errors == [] and widths and all(w > 0 for w in widths), (name, errors, widths)
        page.close()
    page, _ = _open(browser, tmp_path / "report.html")
    text = page.inner_text("body")
    assert "deletion AUC" in text and "digit_3.png" in text and "top-5" in text


def test_strings_from_the_model_are_escaped(browser, tmp_path):
    proto = onnx.load(demo_model_path())
    hostile = "<script>window.__pwned = 1</script><img src=x onerror='window.__pwned = 2'>"
    onnx.helper.set_model_props(proto, {"labels": json.dumps([hostile] * 10)})
    model = tmp_path / "hostile.onnx"
    onnx.save(proto, model)
    image = tmp_path / "a<b>.png"
    shutil.copy(demo_model_path().parent / "digit_3.png", image)
    run = CliRunner().invoke(cli, ["report", str(model), str(image), "-m", "occlusion", "-o", "window", "8",
                                   "--out", str(tmp_path / "out"), "-q"])
    assert run.exit_code == 0, run.output
    page, errors = _open(browser, tmp_path / "out" / "report.html")
    assert page.evaluate("window.__pwned === undefined")
    assert errors == [] and all(w > 0 for w in _all_images_render(page))
    assert "<script>window.__pwned" in page.inner_text("body") and "a<b>.png" in page.inner_text("body")


def test_the_embedding_page_shows_a_thumbnail_on_hover(browser, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for p in demo_model_path().parent.glob("digit_*.png"):
        shutil.copy(p, folder / p.name)
    run = CliRunner().invoke(cli, ["inspect", "embed", str(demo_model_path()), str(folder), "-q", "--out",
                                   str(tmp_path / "embed")])
    assert run.exit_code == 0, run.output
    page, errors = _open(browser, tmp_path / "embed" / "embed.html")
    page.hover("circle")
    assert page.is_visible("#tip") and errors == []
    page.wait_for_function("document.querySelector('#tip img').naturalWidth > 0", timeout=10_000)
