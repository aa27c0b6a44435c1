"""`onnxviz demo`: the bundled model on bundled images, offline."""

from __future__ import annotations

from pathlib import Path

import click

from ..demo import run_demo
from .echo import echo
from .options import out_option


@click.command(short_help="Offline demo: bundled model and images -> out/index.html.")
@out_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def demo(out: str, quiet: bool) -> None:
    """Explain the bundled digits model on bundled images (offline) and write out/index.html."""
    written, notes = run_demo(out, progress=not quiet)
    for note in notes:
        echo(f"note: {note}", err=True)
    echo(f"wrote {len(written)} files to {out}/; open {Path(out) / 'index.html'} or "
               f"{Path(out) / 'report.html'}")
