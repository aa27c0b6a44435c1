"""What is registered, as rows a person or a page can read: `onnxviz methods`, `onnxviz.plugins()` and the
server's method list. Reads the registry only, so listing methods loads no model code."""

from __future__ import annotations

from typing import Any

from . import registry
from .options import describe

__all__ = ["plugins"]


def plugins(name: str | None = None) -> list[dict[str, Any]]:
    """Registered plugins of every kind (built-in and third-party): name, kind, family, needs, options; broken
    ones with their error. With `name`, only that one (an unknown or broken name is a MethodError that suggests
    close ones)."""
    if name is not None:
        registry.get(name)
    rows = []
    for entry in registry.all_entries():
        if name is not None and entry.name != name:
            continue
        row: dict[str, Any] = {"name": entry.name, "distribution": entry.dist, "error": entry.error}
        if entry.conflict:
            row["error"] = f"also claimed by {entry.conflict}"
        if entry.cls is not None:
            cls = entry.cls
            row.update(kind=cls.kind, family=cls.family, requires=cls.requires, needs_layer=cls.needs_layer,
                       output=getattr(cls, "output", "image"), paper=cls.paper, summary=cls.describe(),
                       options=describe(cls.Options))
        rows.append(row)
    return rows
