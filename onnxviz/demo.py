"""The offline demo: the bundled digits CNN and digit images, explained and written to a folder."""

from __future__ import annotations

import importlib.util
from importlib.resources import files
from pathlib import Path

from .api import explain, load_image, prepare
from .model import load
from .report import report
from .viz.report import write_run

DEMO_OPTIONS = {"occlusion": {"window": (6,), "stride": (2,)}}


def data_path(name: str) -> Path:
    """A file shipped in onnxviz/data."""
    return Path(str(files("onnxviz") / "data" / name))


def demo_model_path() -> Path:
    return data_path("digits_cnn.onnx")


def demo_images() -> list[Path]:
    return sorted(data_path("").glob("digit_*.png"))


def torch_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "onnx2torch"))


def run_demo(out: str | Path, progress: bool = True) -> tuple[list[Path], list[str]]:
    """Explain the demo images with every built-in method this install can run; returns (files, notes)."""
    model = load(demo_model_path())
    images = demo_images()
    x = load_image(images, model)
    methods = ["occlusion"]
    notes = []
    if torch_available():
        methods += ["saliency", "gradcam"]
    else:
        notes.append('saliency and gradcam skipped: they need PyTorch (pip install "onnxviz[torch]")')
    explanations = []
    for name in methods:
        prepared = prepare(model, name, options=DEMO_OPTIONS.get(name))
        explanations.append(explain(model, x, name, progress=progress, prepared=prepared))
    written = write_run(out, explanations, [p.name for p in images], model.name)
    written.append(report(model, images, methods, out, options=DEMO_OPTIONS, progress=progress))
    return written, notes
