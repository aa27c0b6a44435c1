"""torch and onnx2torch, imported when a method first needs them, with the install hint when they are missing.
Its own module, so that plugins can name it without loading the converter's code (and onnx)."""

from __future__ import annotations

from ..errors import DependencyError

INSTALL_HINT = 'install the torch extra: pip install "onnxviz[torch]"'


def import_torch():
    """torch and onnx2torch, or a DependencyError that says how to install them."""
    try:
        import onnx2torch  # noqa: F401
        import torch
    except ImportError as exc:
        missing = exc.name or "torch"
        message = f"gradient methods need PyTorch and onnx2torch ({missing} is missing): {INSTALL_HINT}"
        raise DependencyError(message) from exc
    return torch


def torch_device(device: str) -> str:
    torch = import_torch()
    return "cuda" if device == "cuda" and torch.cuda.is_available() else "cpu"
