"""Options shared by the commands."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from .errors import OutputError
from .io import ensure_writable
from .preprocess import PRESETS, Request
from .staging import staged
from .text import printable

_OVERWRITE = "onnxviz.overwrite"


def echo(message: object = "", err: bool = False) -> None:
    """click.echo for everything the commands print: text from models and file names cannot reach the terminal
    as control sequences (see text.printable)."""
    click.echo(printable(message), err=err)


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
    computation) and --overwrite. The command's files appear in --out together when it succeeds, or not at all
    (staging.staged)."""

    @functools.wraps(fn)
    def all_or_nothing(*args, out: str, **kwargs):
        with staged(out):
            return fn(*args, out=out, **kwargs)

    wrapped = click.option("--out", default="out", show_default=True, type=click.Path(file_okay=False),
                           callback=_writable, help="Output folder (checked before anything is computed).")(
        all_or_nothing)
    return click.option("--overwrite", is_flag=True, is_eager=True, expose_value=False, callback=_remember_overwrite,
                        help="Write into an --out folder that already holds files (same names are replaced).")(wrapped)


def image_options(fn):
    """--preprocess, --mean and --std, turned into `preprocessing` (a preprocess.Request): how images are read for
    the model, on every command that reads images."""

    @click.option("--preprocess", type=click.Choice(list(PRESETS)),
                  help="Preprocessing preset (default: the model's metadata, else imagenet for RGB, unit for grey).")
    @click.option("--mean", help="Per-channel mean, comma-separated (over the preset), e.g. 0.485,0.456,0.406.")
    @click.option("--std", help="Per-channel std, comma-separated (over the preset), e.g. 0.229,0.224,0.225.")
    @functools.wraps(fn)
    def wrapper(*args, preprocess, mean, std, **kwargs):
        return fn(*args, preprocessing=Request.parse(preprocess, mean, std), **kwargs)

    return wrapper
