"""The door's locks: the token every API call must carry (Jupyter's pattern), state-changing calls only with it in a
header (a page from another origin cannot set one without a CORS preflight, which this server never grants), and
file names confined to the folders given on the command line."""

from __future__ import annotations

import secrets
from pathlib import Path

from ..errors import OptionError

HEADER = "X-Onnxviz-Token"


def new_token() -> str:
    return secrets.token_urlsafe(24)


def token_ok(expected: str, given: str | None) -> bool:
    return given is not None and secrets.compare_digest(expected.encode(), given.encode())


def confined(folder: Path, name: str) -> Path:
    """`name` inside `folder`, or an OptionError: no absolute paths, no `..`, no symlink that leads out."""
    if not name or Path(name).is_absolute() or ".." in Path(name).parts:
        raise OptionError(f"{name!r} is not a file name inside the served folder")
    root = folder.resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise OptionError(f"{name!r} is not a file inside the served folder")
    return path
