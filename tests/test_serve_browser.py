"""`onnxviz serve` in a real browser (Chromium through Playwright, as the report's tests): the printed URL opens the
page with the model's facts and layers; two models predict and explain side by side (occlusion and Grad-CAM); the
opacity slider reaches every overlay and the cursor reads the map's values; a layer's feature maps, kernels and top
patches show; what is on screen exports as the report; a long RISE run is cancelled and the worker is free again; a
non-image and an image bomb show their errors in the page; the page logs no errors. The screenshots are the README's
(written to docs/images/ when ONNXVIZ_WRITE_SCREENSHOTS=1, else to a temporary folder)."""

from __future__ import annotations

import os
import re
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import onnx
import pytest

from onnxviz.bundled import demo_images, demo_model_path
from tests.tiny_models import gap_net

IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("fastapi")
    folder = tmp_path_factory.mktemp("served")
    for path in demo_images()[:3]:
        (folder / path.name).write_bytes(path.read_bytes())
    rng = np.random.default_rng(0)
    wide = folder.parent / "wide.onnx"
    onnx.save(gap_net(rng.normal(size=(4, 3, 3, 3)), rng.normal(size=(5, 4)), size=(24, 40)), wide)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "onnxviz", "serve", str(demo_model_path()), str(wide),
                                "--images", str(folder), "--port", str(port), "--workers", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = re.search(r"http://\S+", process.stdout.readline()).group(0)
    yield url, folder
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError("onnxviz serve did not stop on SIGTERM") from None


def _page(browser, url):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    end = time.monotonic() + 60
    while True:
        try:
            page.goto(url)
            break
        except Exception:
            if time.monotonic() > end:
                raise
            time.sleep(0.3)
    page.wait_for_function("document.querySelectorAll('#method option').length > 10")
    page.wait_for_function("document.querySelectorAll('#layers tbody tr').length > 3")
    return page, errors


def _shot(page, name: str, tmp_path: Path) -> None:
    path = IMAGES / name if os.environ.get("ONNXVIZ_WRITE_SCREENSHOTS") == "1" else tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000


def _run(page, method: str, options: str = "{}", cards: int = 1) -> None:
    before = page.locator(".card.done").count()
    page.select_option("#method", method)
    page.fill("#options", options)
    page.click("#run")
    page.wait_for_function(f"document.querySelectorAll('.card.done').length >= {before + cards}", timeout=60000)


def test_two_models_side_by_side_layers_and_the_export(browser, server, tmp_path):
    url, folder = server
    page, errors = _page(browser, url)
    assert "token" not in page.url  # the token leaves the address bar
    assert "CAM layer" in page.inner_text("#facts") and "receptive field" in page.inner_text("#layers")
    page.check("#models input[value=wide]")
    page.select_option("#named", label=sorted(p.name for p in folder.iterdir())[0])
    page.click("#predict")
    page.wait_for_function("document.querySelectorAll('#predictions li').length === 10")  # five per model
    _run(page, "occlusion", '{"window": [8]}', cards=2)
    _run(page, "gradcam", cards=2)
    titles = page.locator(".card header span").all_inner_texts()
    assert sorted(titles) == sorted(["digits_cnn · occlusion", "wide · occlusion", "digits_cnn · gradcam",
                                     "wide · gradcam"])
    assert page.evaluate("[...document.querySelectorAll('.card img')].every((i) => i.naturalWidth > 0)")

    page.fill("#opacity", "80")
    page.dispatch_event("#opacity", "input")
    assert set(page.evaluate("[...document.querySelectorAll('img.heat')].map((i) => i.style.opacity)")) == {"0.8"}
    card = page.locator(".card", has_text="wide · gradcam")  # 24 x 40: a transposed readout would show
    box = card.locator(".stack").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.71, box["y"] + box["height"] * 0.31)  # inside a cell, not on an edge
    x, y, value = re.fullmatch(r"x (\d+), y (\d+): (\S+)", card.locator(".readout").inner_text()).groups()
    assert (int(x), int(y)) == (28, 7)  # column 0.71 x 40, row 0.31 x 24
    expected = page.evaluate("""async ([job, x, y]) => {
        const r = (await (await fetch(`/api/jobs/${job}`, {headers: {"X-Onnxviz-Token":
            sessionStorage.getItem("onnxviz-token")}})).json()).result;
        const v = new Float32Array(Uint8Array.from(atob(r.values), (c) => c.charCodeAt(0)).buffer);
        return v[y * r.width + x].toPrecision(4);
    }""", [card.get_attribute("data-job"), int(x), int(y)])
    assert value == expected

    page.uncheck("#models input[value=wide]")
    row = page.locator("#layers tbody tr", has_text="Conv").first
    row.click()
    assert page.input_value("#layer") == row.locator("td").first.inner_text()
    page.click("#features")
    page.wait_for_function("document.getElementById('layer-caption').textContent.includes('most active channels')")
    page.wait_for_function("document.getElementById('layer-picture').naturalWidth > 0")
    page.click("#kernels")
    page.wait_for_function("document.getElementById('layer-caption').textContent.includes('weights')")
    page.click("#patches")
    page.wait_for_function("document.getElementById('layer-caption').textContent.includes('receptive field')",
                           timeout=60000)
    _shot(page, "serve.png", tmp_path)

    with page.expect_download() as download:
        page.click("#export")
    report = Path(download.value.path()).read_text()
    assert report.count("<figure>") == 4 + 2  # every card on screen, and the input of each model's section
    assert "gradcam" in report and "occlusion" in report
    assert errors == []
    page.close()


def test_cancel_and_errors_in_the_page(browser, server):
    url, folder = server
    page, errors = _page(browser, url)
    page.select_option("#named", label=sorted(p.name for p in folder.iterdir())[1])
    page.select_option("#method", "rise")
    page.fill("#options", '{"n_masks": 400000}')
    page.click("#run")
    page.wait_for_function(r"/running \((\d{2,}|[2-9]) steps/.test(document.getElementById('status').textContent)",
                           timeout=60000)
    page.click("#cancel")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('cancelled')", timeout=20000)
    _run(page, "gradcam")  # the one worker is free again
    assert errors == []

    bad = folder.parent / "notes.png"
    bad.write_bytes(b"not an image at all")
    page.set_input_files("#file", str(bad))
    page.click("#predict")
    page.wait_for_function("document.getElementById('error').textContent.length > 0")
    assert "image" in page.inner_text("#error").lower()
    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)  # a PNG that declares 3.6 gigapixels
    bomb = folder.parent / "bomb.png"
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
                     + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)))
    page.evaluate("document.getElementById('error').textContent = ''")
    page.set_input_files("#file", str(bomb))
    page.click("#run")
    page.wait_for_function("document.getElementById('error').textContent.includes('pixels')")
    page.close()


def test_a_request_without_the_token_is_refused(browser, server):
    url, _ = server
    page = browser.new_page()
    response = page.goto(url.split("?")[0] + "api/models")
    assert response.status == 401
    page.close()
