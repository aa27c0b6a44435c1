"""Options shared by the commands."""

from __future__ import annotations

from pathlib import Path

import click

from .errors import OutputError
from .io import ensure_writable

_OVERWRITE = "onnxviz.overwrite"


def _remember_overwrite(ctx: click.Context, param, value: bool) -> bool:
    ctx.meta[_OVERWRITE] = value
    return value


def _writable(ctx: click.Context, param, value):
    if value is None:
        return value
    folder = ensure_writable(value)
    existing = sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []
    if existing and not ctx.meta.get(_OVERWRITE):
        shown = ", ".join(existing[:4]) + (", ..." if len(existing) > 4 else "")
        raise OutputError(f"the output folder {folder} already holds {len(existing)} entries ({shown}); pass "
                          "--overwrite to write over them, or choose another --out")
    return str(Path(folder))


def out_option(fn):
    """--out (checked writable, and empty unless --overwrite, while the command line is read: before any
    computation) and --overwrite."""
    fn = click.option("--out", default="out", show_default=True, type=click.Path(file_okay=False),
                      callback=_writable, help="Output folder (checked before anything is computed).")(fn)
    return click.option("--overwrite", is_flag=True, is_eager=True, expose_value=False, callback=_remember_overwrite,
                        help="Write into an --out folder that already holds files (same names are replaced).")(fn)
