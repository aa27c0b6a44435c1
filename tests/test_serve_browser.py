"""`onnxviz serve` in a real browser (Chromium through Playwright, as the report's tests): the printed URL opens the
page, a served image gets its top-5, occlusion's overlay renders, a long RISE run is cancelled and the worker is
free again, a non-image upload shows its error in the page, and the page logs no errors. The screenshot is the
README's (written to docs/images/serve.png when ONNXVIZ_WRITE_SCREENSHOTS=1, else to a temporary folder)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from onnxviz.bundled import demo_images, demo_model_path

SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "images" / "serve.png"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("fastapi")
    folder = tmp_path_factory.mktemp("served")
    for path in demo_images()[:3]:
        (folder / path.name).write_bytes(path.read_bytes())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "onnxviz", "serve", str(demo_model_path()), "--images",
                                str(folder), "--port", str(port), "--workers", "1"],
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
    page = browser.new_page(viewport={"width": 1100, "height": 800})
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
    return page, errors


def test_predict_explain_cancel_and_errors_in_the_page(browser, server, tmp_path):
    url, folder = server
    page, errors = _page(browser, url)
    assert "token" not in page.url  # the token leaves the address bar
    page.select_option("#named", label=sorted(p.name for p in folder.iterdir())[0])
    page.click("#predict")
    page.wait_for_function("document.querySelectorAll('#predictions li').length === 5")
    page.select_option("#method", "occlusion")
    page.fill("#options", '{"window": [8]}')
    page.click("#run")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('done')", timeout=60000)
    page.wait_for_function("document.getElementById('overlay').naturalWidth > 0")
    assert "occlusion" in page.inner_text("#label")
    shot = SCREENSHOT if os.environ.get("ONNXVIZ_WRITE_SCREENSHOTS") == "1" else tmp_path / "serve.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000

    page.select_option("#method", "rise")
    page.fill("#options", '{"n_masks": 400000}')
    page.click("#run")
    page.wait_for_function(r"/running \((\d{2,}|[2-9]) steps/.test(document.getElementById('status').textContent)",
                           timeout=60000)
    page.click("#cancel")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('cancelled')", timeout=20000)
    page.select_option("#method", "gradcam")
    page.fill("#options", "{}")
    page.click("#run")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('done')", timeout=60000)
    assert errors == []

    bad = folder.parent / "notes.png"
    bad.write_bytes(b"not an image at all")
    page.set_input_files("#file", str(bad))
    page.click("#predict")
    page.wait_for_function("document.getElementById('error').textContent.length > 0")
    assert "image" in page.inner_text("#error").lower()
    page.close()


def test_a_request_without_the_token_is_refused(browser, server):
    url, _ = server
    page = browser.new_page()
    response = page.goto(url.split("?")[0] + "api/models")
    assert response.status == 401
    page.close()
