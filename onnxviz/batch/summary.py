"""summary.html for a batch run: counts, the slowest items and every failure, all text escaped."""

from __future__ import annotations

import html
from pathlib import Path

from ..io import write_bytes_atomic


def _table(rows: list[dict], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(r.get(c)))}</td>" for c in columns) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>" if rows else "<p>none</p>"


def _cell(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else "" if value is None else str(value)


def write_summary(out: Path, result) -> Path:
    rows = result.rows
    done = [r for r in rows if r["status"] == "done"]
    failed = [r for r in rows if r["status"] == "failed"]
    slowest = sorted(done, key=lambda r: -(r.get("seconds") or 0))[:20]
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>onnxviz batch</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse}}
td,th{{padding:3px 10px;border-bottom:1px solid #ddd;text-align:left;font-size:14px}}</style></head>
<body><h1>onnxviz batch</h1>
<p>{len(done)} done, {len(failed)} failed in the manifest; this run: {result.done} done, {result.failed} failed,
{result.skipped} skipped in {result.seconds:.1f} s. Manifest: {html.escape(Path(result.manifest).name)}</p>
<h2>Failed</h2>{_table(failed, ["path", "method", "error"])}
<h2>Slowest</h2>{_table(slowest, ["path", "method", "seconds", "predicted", "score"])}
</body></html>
"""
    return write_bytes_atomic(out / "summary.html", page.encode())
