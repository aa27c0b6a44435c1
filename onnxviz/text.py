"""Text from models and files, made safe to show: a producer name, a metadata value, a tensor or file name can
hold terminal escapes (clear the screen, fake a coloured "verified safe", set the window title) or bidi overrides
that reorder what a person reads. `printable` shows every such character as a visible escape."""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1 controls, zero-width and bidirectional formatting characters
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """`text` with every control, zero-width and bidi character written as \\xNN or \\uNNNN."""
    return _UNSAFE.sub(_escape, str(text))


def count_text(n: float) -> str:
    """A count in k / M / G (decimal): 23.95k parameters, 5.01M FLOPs."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:g}"


def bytes_text(n: float) -> str:
    """A size in binary units: 512 B, 3.0 GiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def shape_text(shape, product: bool = False) -> str:
    """A shape as a list, [1, 3, 224, 224] ("?" when unknown), or as a product, 1x3x224x224 ("scalar" when empty)."""
    dims = [str(d) for d in shape]
    if product:
        return "x".join(dims) or "scalar"
    return "[" + ", ".join(dims) + "]" if dims else "?"
