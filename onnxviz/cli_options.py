"""Options shared by the commands."""

from __future__ import annotations

import click

from .io import ensure_writable


def _writable(ctx, param, value):
    return str(ensure_writable(value)) if value is not None else value


def out_option(fn):
    """--out, created and checked for writing while the command line is read: before any computation."""
    return click.option("--out", default="out", show_default=True, type=click.Path(file_okay=False),
                        callback=_writable, help="Output folder (checked before anything is computed).")(fn)
