"""summary.html for a batch run: counts, the slowest items and every failure, all text escaped."""

from __future__ import annotations

from pathlib import Path

from ..io import write_bytes_atomic
from ..viz.pages import render


def write_summary(out: Path, result) -> Path:
    rows = result.rows
    done = [r for r in rows if r["status"] == "done"]
    failed = [r for r in rows if r["status"] == "failed"]
    slowest = sorted(done, key=lambda r: -(r.get("seconds") or 0))[:20]
    page = render("summary.html", result=result, done=done, failed=failed, slowest=slowest,
                  manifest=Path(result.manifest).name, assumptions=result.assumptions)
    return write_bytes_atomic(out / "summary.html", page.encode())
