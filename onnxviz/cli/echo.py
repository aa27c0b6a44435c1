"""The one print of the commands, in a module of its own so that light commands (`onnxviz methods`) need not
import the option machinery, which loads onnx."""

from __future__ import annotations

import click

from ..text import printable

__all__ = ["echo"]


def echo(message: object = "", err: bool = False) -> None:
    """click.echo for everything the commands print: text from models and file names cannot reach the terminal
    as control sequences (see text.printable)."""
    click.echo(printable(message), err=err)
