"""The manifest: one row per (image, method). Rows are appended to manifest.jsonl as they finish (flushed and
fsynced, so a crash or a kill loses no finished work); a rerun reads it to skip what is done; at the end the
rows, sorted, are written to manifest.parquet when pyarrow is installed."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TextIO

from ..errors import OutputError, first_line

COLUMNS = ["path", "method", "status", "error", "label", "predicted", "score", "target", "options",
           "attr_min", "attr_max", "attr_mean", "attr_abs_mean", "array", "overlay", "seconds"]
JOURNAL = "manifest.jsonl"


class Journal:
    def __init__(self, out: Path):
        self.path = out / JOURNAL
        self._file: TextIO | None = None

    def read(self) -> list[dict]:
        """Complete rows written so far (a line torn by a crash is ignored)."""
        if not self.path.exists():
            return []
        rows = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return rows

    def append(self, rows: list[dict]) -> None:
        try:
            if self._file is None:
                self._repair()
                self._file = self.path.open("a", encoding="utf-8")
            file = self._file
            file.write("".join(json.dumps({c: r.get(c) for c in COLUMNS}) + "\n" for r in rows))
            file.flush()
            os.fsync(file.fileno())
        except OSError as exc:
            raise OutputError(f"cannot write the manifest {self.path}: {exc.strerror or exc}; the rows written "
                              "before are kept: free some space and rerun the same command to resume") from None

    def _repair(self) -> None:
        """End a torn last line so the next row starts on its own line."""
        if self.path.exists() and self.path.stat().st_size:
            with self.path.open("rb+") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    f.write(b"\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def latest(rows: list[dict]) -> dict[tuple[str, str], dict]:
    """The last row per (path, method): a retried item replaces its earlier failure."""
    return {(r["path"], r["method"]): r for r in rows}


def finalize(out: Path, rows: list[dict]) -> Path:
    """manifest.parquet (sorted by path, method) when pyarrow is available; else the journal is the manifest."""
    ordered = sorted(rows, key=lambda r: (r["path"], r["method"]))
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return out / JOURNAL
    table = pa.Table.from_pylist([{c: r.get(c) for c in COLUMNS} for r in ordered], schema=_schema(pa))
    tmp = out / ".manifest.parquet.part"
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, out / "manifest.parquet")
    except (OSError, pa.ArrowException) as exc:  # a full disk: the journal stays the manifest
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {out / 'manifest.parquet'} ({first_line(exc)}); {out / JOURNAL} holds every "
                          "row: rerun the same command to finish the Parquet file") from None
    return out / "manifest.parquet"


def _schema(pa):
    types = {"predicted": pa.int64(), "target": pa.int64(), "score": pa.float64(), "seconds": pa.float64(),
             **{c: pa.float64() for c in COLUMNS if c.startswith("attr_")}}
    return pa.schema([(c, types.get(c, pa.string())) for c in COLUMNS])
