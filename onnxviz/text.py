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
