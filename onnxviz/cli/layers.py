"""`onnxviz layers`: tensor names to pass as --layer."""

from __future__ import annotations

import click

from ..model import Model
from ..text import shape_text
from .echo import echo
from .options import model_options


@click.command(short_help="List layers (tensor names for --layer); * marks the CAM default.")
@click.argument("model")
@click.option("--spatial", is_flag=True, help="Only feature maps and token grids (CAM candidates).")
@model_options
def layers(model: Model, spatial: bool) -> None:
    """Tensor names, op types, shapes and layouts (NCHW, NHWC, tokens:PREFIX:HxW); * marks the default CAM
    layer. A layout read wrongly is overridden with --layer NAME@nhwc (or @nchw, @tokens:1, @ctokens:0)."""
    default = model.default_layer.name if model.default_layer else None
    shown = [layer for layer in model.layers if not spatial or layer.spatial]
    width = min(max((len(layer.name) for layer in shown), default=10), 60)
    echo(f"  {'tensor':<{width}}  {'op':<20}{'shape':<22}layout")
    for layer in shown:
        mark = "*" if layer.name == default else " "
        echo(f"{mark} {layer.name:<{width}}  {layer.op_type:<20}{shape_text(layer.shape):<22}{layer.layout or '-'}")
    if default:
        echo("\n* default layer for CAM methods (--layer auto); --layer also takes node names, last_conv, conv:-1, "
             "block:-1 (a transformer block's attention input), token_layer:-1, and NAME@LAYOUT")
