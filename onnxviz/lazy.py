"""Package attributes imported on first use (PEP 562): a package's `__init__` names what it offers without
importing it, so a plugin module inside the package (`onnxviz.synthesis.deepdream`) does not load the package's
heavy parts (the model loader, onnx) when `onnxviz methods` only lists it."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def exports(package: str, where: dict[str, tuple[str, ...]]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`, whose names live in the modules of `where` (relative names:
    `{".run": ("synthesize",)}`). A name is imported once, then kept in the package."""
    home = {name: module for module, names in where.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in home:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home[name], package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *home})

    return __getattr__, __dir__
