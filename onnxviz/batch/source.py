"""Where a batch's images come from: a folder (recursive), a glob, or a list file (CSV or Parquet with a path
column and an optional label column, or plain text with one path per line)."""

from __future__ import annotations

import csv
import glob
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import OnnxvizError
from ..imagefiles import images_in, is_image_file


@dataclass(frozen=True)
class Item:
    path: str  # absolute
    label: str | None = None


def _listed(rows: Iterator[dict], base: Path, name: str) -> Iterator[Item]:
    for i, row in enumerate(rows):
        path = row.get("path")
        if not path:
            raise OnnxvizError(f"{name}: row {i + 1} has no path; the list needs a 'path' column (and may have "
                               "'label')")
        label = row.get("label")
        yield Item(str((base / str(path)).resolve()), None if label in (None, "") else str(label))


def items(source: str | Path) -> Iterator[Item]:
    """Items in a stable order (sorted for folders and globs, file order for lists)."""
    text = str(source)
    path = Path(text)
    if path.is_dir():
        yield from (Item(str(p.resolve())) for p in images_in(path))
    elif any(c in text for c in "*?["):
        yield from (Item(str(Path(p).resolve())) for p in sorted(glob.glob(text, recursive=True)) if Path(p).is_file())
    elif path.is_file() and path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            yield from _listed(csv.DictReader(f), path.parent, text)
    elif path.is_file() and path.suffix.lower() == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise OnnxvizError(f"{text}: reading Parquet lists needs pyarrow: pip install pyarrow") from None
        yield from _listed(iter(pq.read_table(path).to_pylist()), path.parent, text)
    elif path.is_file() and path.suffix.lower() in (".txt", ".lst"):
        lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
        yield from _listed(({"path": line} for line in lines if line and not line.startswith("#")), path.parent, text)
    elif is_image_file(path):
        yield Item(str(path.resolve()))
    else:
        raise OnnxvizError(f"source {text!r} is not a folder, a glob, a list file (.csv, .parquet, .txt) or an "
                           "image; check the path")
