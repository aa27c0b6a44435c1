"""`onnxviz serve` as a person feels it, in a real browser (Chromium via Playwright): the time from starting the
command to a usable page (model facts and layers shown), and from clicking Run to the Grad-CAM overlay on the demo
model and on resnet18 (random weights, 224 x 224): the first run of a model (loading, the torch conversion), a warm
run on another image, and the same request again (served from the cache).

    python benchmarks/bench_serve.py
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
from common import photos, report, resnet18_pair
from playwright.sync_api import sync_playwright

from onnxviz.bundled import demo_model_path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_and_wait(page, image: str) -> float:
    """Seconds from clicking Run (Grad-CAM on `image`) to the overlay's card being drawn."""
    page.select_option("#named", image)
    before = page.locator(".card.done").count()
    start = time.perf_counter()
    page.click("#run")
    page.wait_for_function(f"document.querySelectorAll('.card.done').length > {before} || "
                           "document.getElementById('error').textContent", timeout=300_000)
    if page.inner_text("#error"):
        raise SystemExit(f"the page says: {page.inner_text('#error')}")
    page.wait_for_function("document.querySelector('.card.done img.heat').naturalWidth > 0")
    return time.perf_counter() - start


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="onnxviz-bench-serve-"))
    for k, photo in enumerate(photos(3)):
        cv2.imwrite(str(folder / f"photo{k}.png"), cv2.cvtColor((photo * 255).astype("uint8"), cv2.COLOR_RGB2BGR))
    _, resnet = resnet18_pair()
    start = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "onnxviz", "serve", str(demo_model_path()), str(resnet),
                               "--images", str(folder), "--port", str(free_port()), "--workers", "2"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rows: list[tuple[str, str]] = []
    try:
        url = re.search(r"http://\S+", server.stdout.readline()).group(0)
        rows.append(("serve -> URL printed", f"{time.perf_counter() - start:.2f} s"))
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            while True:
                try:
                    page.goto(url)
                    break
                except Exception:
                    time.sleep(0.05)
            page.wait_for_function("document.querySelectorAll('#layers tbody tr').length > 3")
            rows.append(("serve -> usable page (facts + layers)", f"{time.perf_counter() - start:.2f} s"))
            page.select_option("#method", "gradcam")
            for model in ("digits_cnn", resnet.stem):
                for box in page.locator("#models input").all():
                    box.set_checked(box.get_attribute("value") == model)
                first = run_and_wait(page, "photo0.png")
                warm = min(run_and_wait(page, "photo1.png"), run_and_wait(page, "photo2.png"))
                cached = run_and_wait(page, "photo1.png")
                rows.append((f"{model}: Run -> Grad-CAM overlay, first", f"{first:.3f} s (loads and converts)"))
                rows.append((f"{model}: Run -> Grad-CAM overlay, warm", f"{warm:.3f} s"))
                rows.append((f"{model}: same request again (cache)", f"{cached:.3f} s ({warm / cached:.1f}x faster)"))
            browser.close()
    finally:
        server.terminate()
        server.wait(20)
    report(rows)


if __name__ == "__main__":
    main()
