"""Class names for predictions: from a labels file the user gives, or from the model's metadata."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

from ..errors import OptionError

METADATA_KEYS = ("onnxviz.labels", "labels", "class_names", "classes", "names")


def _parse(text: str) -> list[str] | None:
    """A JSON or Python list / {index: name} dict, or one name per line."""
    text = text.strip()
    if not text:
        return None
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(value, list):
            return [str(v) for v in value]
        if isinstance(value, dict):
            try:
                table = {int(k): str(v) for k, v in value.items()}
            except (TypeError, ValueError):
                return None
            return [table.get(i, str(i)) for i in range(max(table, default=-1) + 1)]
    lines = [line.strip() for line in text.splitlines()]
    return lines if len(lines) > 1 else None


def class_names(source: str | os.PathLike | list[str] | None, metadata: dict[str, str]) -> list[str] | None:
    """Names from `source` (a list, or a text/JSON file), else from metadata_props, else None."""
    if isinstance(source, list):
        return [str(s) for s in source]
    if source is not None:
        path = Path(source)
        try:
            names = _parse(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise OptionError(f"cannot read the labels file {path}: {exc}") from None
        if not names:
            raise OptionError(f"{path} holds no class names: give one name per line, or a JSON list")
        return names
    for key in METADATA_KEYS:
        if key in metadata:
            names = _parse(metadata[key])
            if names:
                return names
    return None
