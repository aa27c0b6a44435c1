"""The offline demo: the bundled digits CNN and digit images, explained and written to a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .bundled import data_path, demo_images, demo_model_path, torch_available
from .explainer import Explainer
from .model import load
from .reading import load_image
from .report import report
from .viz.report import write_run

__all__ = ["data_path", "demo_images", "demo_model_path", "run_demo", "torch_available"]

DEMO_OPTIONS: dict[str, dict[str, Any]] = {"occlusion": {"window": (6,), "stride": (2,)}}


def mistakes(images: list[Path], ex) -> list[str]:
    """A line for each bundled digit the model gets wrong (its label is in its name, digit_K.png): the demo
    explains it, and the overlays show what the model looked at instead."""
    found = []
    for path, predicted in zip(images, ex.predictions, strict=True):
        label = path.stem.rpartition("_")[2]
        if label.isdigit() and int(label) != int(predicted):
            found.append(f"{path.name} shows a {label} and the model predicts {int(predicted)}: one mistake of a "
                         "small model, kept on purpose; its overlays show what it looked at instead")
    return found


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
        explainer = Explainer(model, name, progress=progress, **DEMO_OPTIONS.get(name, {}))
        explanations.append(explainer.explain(x))
    notes += mistakes(images, explanations[0])
    written = write_run(out, explanations, [p.name for p in images], model.name)
    written.append(report(model, images, methods, out, options=DEMO_OPTIONS, progress=progress))
    return written, notes
