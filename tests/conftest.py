"""Session-scoped models and images: every export is built once per run, nothing is downloaded."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import onnxviz


def pytest_configure(config):
    np.set_printoptions(precision=4, suppress=True)
    # every load normalizes afresh (tests replace onnxslim to see the fallbacks) and nothing lands in the user's
    # cache directory; tests/test_graph_cache.py turns the cache on in a folder of its own
    os.environ["ONNXVIZ_CACHE"] = "off"


@pytest.fixture(autouse=True)
def _own_working_directory(tmp_path_factory, monkeypatch):
    """Every test runs in an empty folder of its own: what a user (or `onnxviz demo`) left in the working
    directory, such as ./out, can neither break a test nor be overwritten by one."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@dataclass
class Reference:
    """A native PyTorch network, its ONNX export, and where pytorch-grad-cam should look."""

    name: str
    net: object  # the module Captum / pytorch-grad-cam run on (same function as the ONNX graph's logits)
    path: Path
    cam_layer: object  # module whose output is the default CAM layer
    nhwc: bool = False
    softmax_net: object = None  # the network including its Softmax, for NHWC/softmax models


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def photos() -> list[np.ndarray]:
    """Real photos from scikit-image, RGB float in [0, 1]."""
    from skimage import data

    return [im.astype(np.float32) / 255.0 for im in (data.chelsea(), data.astronaut(), data.coffee())]


@pytest.fixture(scope="session")
def digits_model() -> onnxviz.Model:
    from onnxviz.demo import demo_model_path

    return onnxviz.load(demo_model_path())


@pytest.fixture(scope="session")
def digits_batch(digits_model) -> np.ndarray:
    from onnxviz.demo import demo_images

    return onnxviz.load_image(demo_images(), digits_model)


_built: dict[str, Reference] = {}


def _build(name: str, workdir: Path) -> Reference:
    import torch

    from models.digits import build
    from models.exports import Nhwc, NhwcSoftmax, export, torchvision_net

    if name == "digits":
        net, path, _ = build(workdir / "digits.onnx")
        return Reference(name, net, path, net.features[-1])
    if name == "tiny_nhwc":
        torch.manual_seed(0)
        base = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3),
                                   torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                   torch.nn.Linear(8, 4)).eval()
        path = export(NhwcSoftmax(base), workdir / "tiny_nhwc.onnx", "legacy", size=16, nhwc=True)
        return Reference(name, base, path, base[3], nhwc=True)
    if name == "tiny_seg":
        from models.segmentation import build as build_seg

        net, path, _ = build_seg(workdir / "tiny_seg.onnx")
        return Reference(name, net, path, net.features[-1])
    if name == "nhwc_softmax":
        base = torchvision_net("mobilenet_v2", seed=3)
        wrapped = NhwcSoftmax(base)
        path = export(wrapped, workdir / "nhwc_softmax.onnx", "legacy", nhwc=True)

        return Reference(name, Nhwc(base).eval(), path, base.features[-1], nhwc=True, softmax_net=wrapped)
    arch, exporter = name.rsplit("_", 1)
    net = torchvision_net(arch, seed=1)
    path = export(net, workdir / f"{name}.onnx", exporter)
    layer = net.layer4[-1] if arch.startswith("resnet") else net.features[-1]
    return Reference(name, net, path, layer)


@pytest.fixture(scope="session")
def build_reference(workdir):
    """Build (once per run) and return the named reference model."""

    def get(name: str) -> Reference:
        if name not in _built:
            _built[name] = _build(name, workdir)
        return _built[name]

    return get


@pytest.fixture(scope="session")
def tiny_yolo(workdir) -> Path:
    """An ultralytics YOLOv8n with random weights that detect (models/detectors.py), 128 x 160, 3 classes named."""
    pytest.importorskip("ultralytics")
    import onnx

    from models.detectors import export, yolo

    path = export(yolo(), workdir / "yolo.onnx")
    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, {"names": "{0: 'person', 1: 'bicycle', 2: 'car'}"})
    onnx.save(proto, str(path))
    return path


@pytest.fixture(scope="session")
def tiny_vit(workdir) -> Path:
    """A one-block timm ViT with random weights and 300 classes (the README explains class 281)."""
    import torch
    from timm.models.vision_transformer import VisionTransformer

    from models.exports import export

    torch.manual_seed(0)
    net = VisionTransformer(img_size=32, patch_size=8, embed_dim=16, depth=1, num_heads=2, num_classes=300).eval()
    return export(net, workdir / "vit.onnx", "legacy", size=32)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium through Playwright; skipped without it unless ONNXVIZ_REQUIRE_BROWSER=1 (CI sets it)."""
    if os.environ.get("ONNXVIZ_REQUIRE_BROWSER") != "1":
        if CHROMIUM is None:
            pytest.skip("no chromium (apt-get install chromium); CI installs it")
        pytest.importorskip("playwright")
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "chromium is required here (ONNXVIZ_REQUIRE_BROWSER=1)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()
