"""`onnxviz serve` (issue 23), through FastAPI's ASGI test client: the token on every call (and only in a header for
calls that change state), another origin refused, models / methods / layers, predictions, explanations as jobs
with progress, cancellation that stops the work, the cache, uploads that are not images or are bombs, names that
try to leave the served folder."""

from __future__ import annotations

import base64
import io
import struct
import time
import zlib

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from onnxviz.bundled import demo_images, demo_model_path
from onnxviz.serve.app import Served, create_app
from onnxviz.serve.security import HEADER
from tests.serve_client import TOKEN, get, png, post, wait


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    for k, path in enumerate(demo_images()[:2]):
        (folder / f"digit{k}.png").write_bytes(path.read_bytes())
    outside = folder.parent / "secret.png"
    outside.write_bytes(demo_images()[0].read_bytes())
    (folder / "link.png").symlink_to(outside)
    app = create_app(Served({"digits": demo_model_path()}, TOKEN, folder, workers=1, queue=1))
    with TestClient(app) as client:
        yield client


def test_every_api_call_needs_the_token(served):
    assert served.get("/api/models").status_code == 401
    assert served.get("/api/models", headers={HEADER: "wrong"}).status_code == 401
    assert served.get(f"/api/models?token={TOKEN}").status_code == 200  # links and EventSource
    no_header = served.post(f"/api/models/digits/predict?token={TOKEN}", files={"file": ("d.png", png())})
    assert no_header.status_code == 401  # a call that does work needs the header: a form on another site has none
    other = served.get("/api/models", headers={HEADER: TOKEN, "origin": "http://evil.example"})
    assert other.status_code == 403
    assert "access-control-allow-origin" not in {k.lower() for k in other.headers}
    assert served.get("/").status_code == 200  # the page itself carries no data


def test_models_methods_layers_and_images(served):
    assert get(served, "/api/models").json() == [{"id": "digits", "file": "digits_cnn.onnx"}]
    facts = get(served, "/api/models/digits").json()
    assert facts["input"]["layout"] == "NCHW" and facts["default_layer"] and len(facts["layers"]) > 3
    names = {m["name"] for m in get(served, "/api/methods").json()}
    assert {"gradcam", "occlusion", "lrp", "lime"} <= names
    assert get(served, "/api/images").json() == ["digit0.png", "digit1.png"]  # not the link that leads out
    assert get(served, "/api/models/nope").status_code == 404
    assert served.get("/openapi.json").json()["info"]["title"] == "onnxviz"


def test_predictions_come_from_an_upload_or_a_served_name(served):
    top = post(served, "/api/models/digits/predict", files={"file": ("d.png", png())}).json()
    assert len(top) == 5 and abs(sum(p["probability"] for p in top) - 1) < 0.2
    assert top[0]["probability"] >= top[1]["probability"]
    named = post(served, "/api/models/digits/predict", data={"image": "digit0.png"}).json()
    assert named[0]["class"] == top[0]["class"]


@pytest.mark.parametrize("name", ["../secret.png", "/etc/passwd", "link.png", "missing.png"])
def test_names_cannot_leave_the_served_folder(served, name):
    response = post(served, "/api/models/digits/predict", data={"image": name})
    assert response.status_code == 400 and "served folder" in response.json()["detail"]


def test_a_non_image_and_a_bomb_are_refused_clearly(served):
    text = post(served, "/api/models/digits/predict", files={"file": ("notes.png", b"hello, not an image")})
    assert text.status_code == 400 and "image" in text.json()["detail"].lower()
    header = b"\x89PNG\r\n\x1a\n"
    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)  # 3.6 gigapixels declared
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    bomb = post(served, "/api/models/digits/predict", files={"file": ("bomb.png", header + chunk)})
    assert bomb.status_code == 400 and "pixels" in bomb.json()["detail"]


def test_an_explanation_runs_as_a_job_and_is_cached(served):
    job = post(served, "/api/models/digits/explain", data={"method": "occlusion", "options": '{"window": [8]}'},
                files={"file": ("d.png", png())}).json()
    final = wait(served, job["id"])
    assert final["status"] == "done" and final["ticks"] > 0, final
    overlay = cv2.imdecode(np.frombuffer(base64.b64decode(final["result"]["overlay"]), np.uint8), 1)
    assert overlay is not None and overlay.std() > 5
    again = post(served, "/api/models/digits/explain", data={"method": "occlusion", "options": '{"window": [8]}'},
                  files={"file": ("d.png", png())}).json()
    assert again["id"] == job["id"] and again["status"] == "done"  # the same request: served from the cache
    other = post(served, "/api/models/digits/explain", data={"method": "occlusion", "options": '{"window": [16]}'},
                  files={"file": ("d.png", png())}).json()
    assert other["id"] != job["id"]
    assert wait(served, other["id"])["status"] == "done"
    stream = served.get(f"/api/jobs/{job['id']}/events?token={TOKEN}")
    assert "data:" in stream.text and '"done"' in stream.text


def test_bad_requests_say_what_is_wrong(served):
    unknown = post(served, "/api/models/digits/explain", data={"method": "gradcamm"},
                    files={"file": ("d.png", png())})
    assert unknown.status_code == 400 and "gradcam" in unknown.json()["detail"]
    bad_json = post(served, "/api/models/digits/explain", data={"method": "rise", "options": "{n_masks: 5"},
                     files={"file": ("d.png", png())})
    assert bad_json.status_code == 400 and "JSON" in bad_json.json()["detail"]
    misspelt = post(served, "/api/models/digits/explain", data={"method": "rise", "options": '{"n_maskz": 5}'},
                     files={"file": ("d.png", png())})
    assert misspelt.status_code == 400 and "n_masks" in misspelt.json()["detail"]  # refused before it queues
    bad_value = post(served, "/api/models/digits/explain", data={"method": "rise", "options": '{"n_masks": "many"}'},
                      files={"file": ("d.png", png())})
    assert bad_value.status_code == 400 and "n_masks" in bad_value.json()["detail"]
    assert post(served, "/api/models/digits/explain", data={"method": "rise"}).status_code == 400  # no image


def test_cancel_stops_a_long_job_and_frees_the_worker(served):
    image = io.BytesIO(png()).getvalue()
    job = post(served, "/api/models/digits/explain", data={"method": "rise", "options": '{"n_masks": 400000}'},
                files={"file": ("d.png", image)}).json()
    end = time.monotonic() + 60
    while get(served, f"/api/jobs/{job['id']}").json()["ticks"] < 2 and time.monotonic() < end:
        time.sleep(0.05)
    started = time.monotonic()
    assert post(served, f"/api/jobs/{job['id']}/cancel").json()["id"] == job["id"]
    final = wait(served, job["id"], timeout=30)
    assert final["status"] == "cancelled" and time.monotonic() - started < 10
    quick = post(served, "/api/models/digits/explain", data={"method": "occlusion", "options": '{"window": [16]}'},
                  files={"file": ("d.png", image)}).json()
    assert wait(served, quick["id"])["status"] == "done"  # the one worker is free again


def test_the_command_serves_the_page_and_the_api_on_a_free_port():
    import re
    import socket
    import subprocess
    import sys
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "onnxviz", "serve", str(demo_model_path()), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = server.stdout.readline()
        url = re.search(r"http://\S+", line).group(0)
        token = url.split("token=")[1]
        end = time.monotonic() + 60
        while True:
            try:
                page = urllib.request.urlopen(url, timeout=5).read().decode()
                break
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.2)
        assert "<title>onnxviz</title>" in page
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/models", headers={HEADER: token})
        assert b"digits" in urllib.request.urlopen(request, timeout=5).read()
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/models", timeout=5)
            raise AssertionError("no token, yet an answer")
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
    finally:
        server.terminate()
        server.wait(10)


def test_old_finished_jobs_are_forgotten():
    from onnxviz.serve.jobs import Jobs

    jobs = Jobs(workers=1, queue=4, keep=2)
    done = [jobs.submit(("k", k), lambda k=k: ({"k": k}, None)) for k in range(4)]
    for job in done:
        assert job.done.wait(10) and job.status == "done"
    newest = jobs.submit(("k", 4), lambda: ({"k": 4}, None))
    newest.done.wait(10)
    assert set(jobs.jobs) == {done[2].id, done[3].id, newest.id}  # two finished kept, plus the new one
    assert ("k", 0) not in jobs.by_key and done[0].id not in jobs.jobs  # the oldest: forgotten, recomputed if asked
    again = jobs.submit(("k", 0), lambda: ({"k": 0}, None))
    assert again.id != done[0].id
    jobs.shutdown()
