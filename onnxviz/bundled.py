"""What ships inside the package: the digits CNN and its images (the demo, the contract kit's defaults), and
whether the optional torch extra is installed."""

from __future__ import annotations

import importlib.util
from importlib.resources import files
from pathlib import Path


def data_path(name: str) -> Path:
    """A file shipped in onnxviz/data."""
    return Path(str(files("onnxviz") / "data" / name))


def demo_model_path() -> Path:
    return data_path("digits_cnn.onnx")


def demo_images() -> list[Path]:
    return sorted(data_path("").glob("digit_*.png"))


def torch_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "onnx2torch"))
