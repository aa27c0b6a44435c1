"""Trained detectors as PyPI wheels ship them (installed with --no-deps, see the README's develop lines): nudenet's
YOLOv8n (`320n.onnx`, 18 classes, its names and size in ultralytics' metadata) and ddddocr's raw YOLOX head
(`common_det.onnx`, decoded by the wheel's own post-processing here as the reference). Photos from scikit-image."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import onnxviz
from onnxviz.preprocess import Preprocessing


def _wheel_file(package: str, name: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{package} is not installed (pip install --no-deps {package})")
    return Path(next(iter(spec.submodule_search_locations))) / name


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    return data.astronaut().astype(np.float32) / 255


def test_nudenet_finds_the_astronauts_face_and_drise_points_at_it(astronaut):
    """ultralytics' metadata gives the size (320 x 320), the [0, 1] RGB input and the class names; det:0 is the
    face, and the D-RISE map's strongest pixel lies inside its box (the pointing game)."""
    model = onnxviz.load(_wheel_file("nudenet", "320n.onnx"))
    assert model.input_size == (320, 320) and model.preprocessing_source == "metadata" and not model.assumptions()
    x = onnxviz.load_image([astronaut], model)
    ex = onnxviz.explain(model, x, "drise", target="det:0", n_masks=400, progress=False)
    assert "FACE_FEMALE" in ex.label(0)
    (box,) = ex.extras["explained_boxes"][0]
    x0, y0, x1, y1 = box
    assert 90 < x0 < x1 < 190 and 30 < y0 < y1 < 130  # the face, in the 320 x 320 input
    y, x_ = np.unravel_index(ex.attributions[0].argmax(), ex.attributions[0].shape)
    assert x0 <= x_ <= x1 and y0 <= y <= y1
    assert model.default_layer.name.startswith("/model.15/")  # the P3 neck, which every head branch reads


def test_ddddocrs_raw_yolox_head_decodes_as_its_own_post_processing():
    """The wheel's demo_postprocess (YOLOX grids, strides 8 / 16 / 32) is the reference for our decoding; its input
    is 0..255 BGR without normalization, its detections start at a score of 0.1."""
    pytest.importorskip("cv2")
    from skimage import data

    detection_engine = pytest.importorskip("ddddocr.core.detection_engine")
    import cv2

    model = onnxviz.load(_wheel_file("ddddocr", "common_det.onnx"),
                         preprocessing=Preprocessing(scale=255.0, channel_order="BGR"))
    text = cv2.resize(data.text(), (416, 416)).astype(np.float32) / 255
    x = onnxviz.load_image([np.stack([text] * 3, axis=-1)], model)
    (raw,) = model.ort.run(x, ("output",))
    theirs = detection_engine.DetectionEngine.demo_postprocess(None, raw.copy(), (416, 416))[0]
    from onnxviz.targets.decoders import YoloX, recognise

    decoder = recognise({"output": raw}, model.input_size)
    assert isinstance(decoder, YoloX)
    found = decoder.decode([raw])
    corners = np.concatenate([theirs[:, :2] - theirs[:, 2:4] / 2, theirs[:, :2] + theirs[:, 2:4] / 2], axis=1)
    np.testing.assert_allclose(found.boxes[0], corners, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(found.confidence[0], theirs[:, 4] * theirs[:, 5], rtol=1e-6)
    ex = onnxviz.explain(model, x, "occlusion", target=onnxviz.Target(kind="det", value="0", confidence=0.1),
                         window=(32,), stride=(16,), progress=False)
    best = int(np.argmax(theirs[:, 4] * theirs[:, 5]))
    np.testing.assert_allclose(ex.extras["explained_boxes"][0][0], corners[best], rtol=1e-5, atol=1e-3)
