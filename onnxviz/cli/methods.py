"""`onnxviz methods [NAME]`: the registered plugins, or one plugin's options."""

from __future__ import annotations

import click

from .. import catalog, registry
from .echo import echo


@click.command(short_help="List registered methods, or show one method's options.")
@click.argument("name", required=False)
def methods(name: str | None) -> None:
    """Registered methods (built-in and plugins); with NAME, its options and paper."""
    rows = catalog.plugins()
    if name:
        registry.get(name)  # the error for an unknown or broken name
        row = next(r for r in rows if r["name"] == name)
        needs = row["requires"] + (" + a layer" if row["needs_layer"] else "")
        echo(f"{row['name']}  ({row['family']}, needs {needs}, from {row['distribution']})")
        echo(f"  {row['summary']}")
        echo(f"  paper: {row['paper'] or '-'}")
        echo("  options:" if row["options"] else "  options: none")
        for opt, kind, default, help_text in row["options"]:
            echo(f"    {opt} ({kind}, default {default}): {help_text}")
        return
    for row in rows:
        if row["error"]:
            echo(f"{row['name']:<22}BROKEN ({row['distribution']}): {row['error']}")
            continue
        needs = row["requires"] + ("+layer" if row["needs_layer"] else "")
        echo(f"{row['name']:<22}{row['family']:<13}{needs:<17}{row['distribution']:<25}{row['summary']}")
