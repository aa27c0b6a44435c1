"""`onnxviz serve` beyond one overlay (issue 23): a result's map values for the opacity slider and the value under
the cursor, the layer views (feature maps, kernels, top patches over --images, a channel's visualization) equal to
the functions the command line uses, the work limits named when a request exceeds them, a cancellable synthesis, and
the exported report of what is on screen. A second, non-square model (12 x 20) catches transposed maps."""

from __future__ import annotations

import base64
import re
import threading

import cv2
import numpy as np
import onnx
import pytest
from numpy.testing import assert_allclose

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

import onnxviz
from onnxviz.bundled import demo_images, demo_model_path
from onnxviz.inspect.features import feature_grid, feature_maps
from onnxviz.inspect.kernels import kernel_grid
from onnxviz.inspect.patches import patch_grid, top_patches
from onnxviz.io import to_uint8
from onnxviz.serve.app import Served, WorkLimits, create_app
from onnxviz.viz.overlay import colorize
from tests.serve_client import TOKEN, get, picture, post, wait
from tests.tiny_models import gap_net

WIDE = (12, 20)


@pytest.fixture(scope="module")
def wide_path(tmp_path_factory):
    rng = np.random.default_rng(3)
    path = tmp_path_factory.mktemp("wide") / "wide.onnx"
    onnx.save(gap_net(rng.normal(size=(4, 3, 3, 3)), rng.normal(size=(5, 4)), size=WIDE), path)
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("views")
    for k, path in enumerate(demo_images()[:4]):
        (folder / f"digit{k}.png").write_bytes(path.read_bytes())
    return folder


@pytest.fixture(scope="module")
def client(wide_path, folder):
    served = Served({"digits": demo_model_path(), "wide": wide_path}, TOKEN, folder, workers=1, queue=4,
                    limits=WorkLimits(max_steps=300, max_mask_pixels=1024 * 100))
    with TestClient(create_app(served)) as client:
        yield client


def _explain(client, model, method, options="{}", name="digit0.png", **fields):
    job = post(client, f"/api/models/{model}/explain", data={"method": method, "options": options, "image": name,
                                                              **fields})
    assert job.status_code == 200, job.text
    final = wait(client, job.json()["id"])
    assert final["status"] == "done", final
    return final


@pytest.mark.parametrize(("model", "method"), [("wide", "gradcam"), ("wide", "occlusion"), ("digits", "saliency")])
def test_a_result_carries_its_map_values_image_and_colours(client, folder, wide_path, model, method):
    result = _explain(client, model, method)["result"]
    m = onnxviz.load(wide_path if model == "wide" else demo_model_path())
    ex = onnxviz.explain(m, onnxviz.load_image(folder / "digit0.png", m), method, progress=False)
    values = np.frombuffer(base64.b64decode(result["values"]), "<f4").reshape(result["height"], result["width"])
    assert (result["height"], result["width"]) == m.input_size
    assert_allclose(values, ex.maps()[0], rtol=1e-5, atol=1e-7)  # what the cursor reads: the map itself
    assert_allclose(result["scale"], ex.scales()[0], rtol=1e-5)
    images, norm, signed = ex.drawn()
    assert result["signed"] == signed
    assert picture(result["image"]).shape == (*m.input_size, 3)
    assert np.abs(picture(result["image"]) / 255.0 - images[0]).max() <= 1 / 255 + 1e-6
    assert np.array_equal(picture(result["heat"]), to_uint8(colorize(norm[0], signed)))
    assert result["model"] == model and result["image_name"] == "digit0.png" and result["method"] == method
    assert result["seconds"] > 0 and result["label"] == ex.label(0)


def test_layers_come_with_receptive_fields_and_the_model_facts(client):
    facts = get(client, "/api/models/wide").json()
    keys = [k for k, _ in facts["facts"]]
    assert {"model", "input", "CAM layer", "preprocess"} <= set(keys) and "torch" not in keys
    conv = next(layer for layer in facts["layers"] if layer["name"] == "conv")
    assert conv["field"] == "3x3 px, stride 1x1" and conv["shape"][-2:] == list(WIDE)


@pytest.mark.parametrize("blend", [False, True])
def test_feature_maps_are_the_command_lines(client, folder, wide_path, blend):
    response = post(client, "/api/models/wide/features", data={"layer": "act", "top": "3", "image": "digit1.png",
                                                                "blend": str(blend).lower()})
    assert response.status_code == 200, response.text
    m = onnxviz.load(wide_path)
    x = onnxviz.load_image(folder / "digit1.png", m)
    found = feature_maps(m, x, "act", 3)
    expected = feature_grid(found, m.preprocessing.invert(x[0]) if blend else None)
    assert response.json()["channels"] == [int(c) for c in found["channels"]]
    assert np.array_equal(picture(response.json()["picture"]), to_uint8(expected))


def test_kernels_are_the_command_lines_and_other_layers_are_refused(client):
    layers = [layer["name"] for layer in get(client, "/api/models/digits").json()["layers"]]
    conv = next(name for name in layers if get(client, "/api/models/digits/kernels",
                                               params={"layer": name}).status_code == 200)
    response = get(client, "/api/models/digits/kernels", params={"layer": conv}).json()
    expected, what = kernel_grid(onnxviz.load(demo_model_path()), conv)
    assert np.array_equal(picture(response["picture"]), to_uint8(expected)) and response["what"] == what
    refused = get(client, "/api/models/wide/kernels", params={"layer": "act"})
    detail = refused.json()["detail"]
    assert refused.status_code == 400 and "not a Conv" in detail and "conv" in detail  # and the Conv layers named


def test_top_patches_over_the_served_images_are_the_command_lines(client, folder, wide_path):
    job = post(client, "/api/models/wide/patches", data={"layer": "act", "channels": "0-2", "k": "2"})
    final = wait(client, job.json()["id"])
    assert final["status"] == "done" and final["kind"] == "patches", final
    paths = sorted(folder.iterdir())
    hits, rf, _ = top_patches(onnxviz.load(wide_path), paths, "act", [0, 1, 2], 2, progress=False)
    assert np.array_equal(picture(final["result"]["picture"]), to_uint8(patch_grid(hits, paths)))
    assert final["result"]["field"] == str(rf)
    bad = post(client, "/api/models/wide/patches", data={"layer": "act", "channels": "0-x"})
    assert bad.status_code == 400 and "--channels" in bad.json()["detail"]


def test_a_missing_or_mistyped_field_is_said_in_one_line(client):
    missing = post(client, "/api/models/wide/features", data={"image": "digit0.png"})
    assert missing.status_code == 422 and missing.json()["detail"] == "layer: Field required"
    typed = post(client, "/api/models/wide/visualize", data={"layer": "act", "channel": "two"})
    assert typed.status_code == 422 and typed.json()["detail"].startswith("channel: ")


def test_top_patches_need_an_images_folder(wide_path):
    with TestClient(create_app(Served({"wide": wide_path}, TOKEN))) as bare:
        response = post(bare, "/api/models/wide/patches", data={"layer": "act"})
        assert response.status_code == 400 and "--images" in response.json()["detail"]


def test_a_channel_visualization_runs_as_a_job_and_can_be_cancelled(client, wide_path):
    pytest.importorskip("onnx2torch")
    final = wait(client, post(client, "/api/models/wide/visualize",
                              data={"layer": "act", "channel": "2", "steps": "6"}).json()["id"])
    assert final["status"] == "done" and final["kind"] == "visualize", final
    expected = onnxviz.synthesize(onnxviz.load(wide_path), "maximize", "act:2", steps=6, progress=False)
    assert_allclose(picture(final["result"]["picture"]), to_uint8(expected.figure()), atol=2)
    long = post(client, "/api/models/wide/visualize", data={"layer": "act", "channel": "1", "steps": "300"}).json()
    while get(client, f"/api/jobs/{long['id']}").json()["ticks"] < 3:
        pass
    post(client, f"/api/jobs/{long['id']}/cancel")
    assert wait(client, long["id"], timeout=30)["status"] == "cancelled"  # each optimization step is a checkpoint
    over = post(client, "/api/models/wide/visualize", data={"layer": "act", "channel": "1", "steps": "301"})
    assert over.status_code == 400 and "300" in over.json()["detail"]


def test_requests_over_the_limits_are_refused_with_the_limit_named(client):
    assert get(client, "/api/limits").json()["max_mask_pixels"] == 1024 * 100
    # 32 x 32 digits: 100 masks fit, 101 do not; on the 12 x 20 model the same pixels allow 426 masks
    too_many = post(client, "/api/models/digits/explain", data={"method": "rise", "options": '{"n_masks": 101}',
                                                                 "image": "digit0.png"})
    assert too_many.status_code == 400
    detail = too_many.json()["detail"]
    assert "102400" in detail and "32x32" in detail and "100 masks" in detail and "--max-mask-pixels" in detail
    wide = post(client, "/api/models/wide/explain", data={"method": "rise", "options": '{"n_masks": 427}',
                                                           "image": "digit0.png"})
    assert wide.status_code == 400 and "426 masks" in wide.json()["detail"]
    assert post(client, "/api/models/wide/explain", data={"method": "rise", "options": '{"n_masks": 426}',
                                                           "image": "digit0.png"}).status_code == 200
    steps = post(client, "/api/models/digits/explain", data={"method": "integrated_gradients",
                                                              "options": '{"n_steps": 301}', "image": "digit0.png"})
    assert steps.status_code == 400
    assert "n_steps=301" in steps.json()["detail"] and "--max-steps" in steps.json()["detail"]


def test_the_exported_report_shows_what_is_on_screen(client, folder):
    flipped = cv2.imread(str(demo_images()[0]))[:, ::-1]
    (folder / "<i>odd&.png").write_bytes(cv2.imencode(".png", flipped)[1].tobytes())  # pixels of its own
    try:
        first = _explain(client, "wide", "gradcam", name="<i>odd&.png")
        second = _explain(client, "digits", "occlusion", '{"window": [4]}', name="digit2.png")
        third = _explain(client, "digits", "saliency", name="digit2.png")
    finally:
        (folder / "<i>odd&.png").unlink()
    fourth = _explain(client, "digits", "gradcam", name="digit2.png")  # on screen under another name, below
    shown = [{"job": first["id"]}, {"job": second["id"]}, {"job": third["id"], "image": "digit2.png"},
             {"job": fourth["id"], "image": "same pixels.png"}]
    response = post(client, "/api/report", json={"shown": shown})
    assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
    page = response.text
    assert "<i>odd" not in page and "&lt;i&gt;odd&amp;.png" in page  # names from files are escaped
    assert page.count("<h2>") == 3  # one section per model and image: digit2 has two methods side by side
    assert "wide: &lt;i&gt;odd&amp;.png" in page and "digits: digit2.png" in page
    assert "digits: same pixels.png" in page  # the name the page shows, not the one the cached job was run under
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 3 + 4  # an input per section, every overlay
    assert "http://" not in page and "https://" not in page.split("</style>")[-1]  # self-contained
    patches = post(client, "/api/models/wide/patches", data={"layer": "act", "channels": "0"}).json()
    wait(client, patches["id"])
    refused = post(client, "/api/report", json={"shown": [{"job": patches["id"]}]})
    assert refused.status_code == 400 and "explanation" in refused.json()["detail"]
    assert post(client, "/api/report", json={"shown": []}).status_code == 400


def test_concurrent_first_requests_load_a_model_once(wide_path):
    calls = []

    def prepare(path):
        calls.append(path)
        return onnxviz.load(path)

    served = Served({"wide": wide_path}, TOKEN, prepare=prepare)
    threads = [threading.Thread(target=served.model, args=("wide",)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [wide_path]


def test_each_worker_has_its_own_model_and_keeps_it(wide_path):
    served = Served({"wide": wide_path}, TOKEN, workers=2)
    shared = served.model("wide")
    seen: dict[str, list] = {"a": [], "b": []}

    def job(name: str, gate: threading.Barrier) -> None:
        seen[name].append(served.worker_model("wide"))
        gate.wait()  # both workers hold a model at once
        seen[name].append(served.worker_model("wide"))

    gate = threading.Barrier(2)
    threads = [threading.Thread(target=job, args=(name, gate)) for name in seen]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (a, a_again), (b, b_again) = seen["a"], seen["b"]
    assert a is a_again and b is b_again  # reused across a worker's jobs
    assert a is not b and shared in (a, b)  # never shared by two workers; the first takes the requests' instance


def test_the_report_keeps_two_uploads_of_one_name_apart(client):
    first = cv2.imencode(".png", cv2.imread(str(demo_images()[1])))[1].tobytes()
    second = cv2.imencode(".png", cv2.imread(str(demo_images()[2])))[1].tobytes()
    jobs = []
    for data in (first, second):
        job = post(client, "/api/models/digits/explain", data={"method": "saliency"},
                   files={"file": ("image.png", data)}).json()
        jobs.append(wait(client, job["id"])["id"])
    page = post(client, "/api/report", json={"shown": [{"job": j, "image": "image.png"} for j in jobs]}).text
    assert page.count("<h2>") == 2  # the same name, other pixels: two sections, each with its own input
