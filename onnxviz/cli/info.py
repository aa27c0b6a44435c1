"""`onnxviz info`: what the model is and whether torch can run it."""

from __future__ import annotations

import click

from ..inspect.summary import facts, summarize
from ..model import Model
from ..text import count_text, shape_text
from .echo import echo
from .options import model_options


@click.command(short_help="Describe a model: inputs, layout, softmax tail, torch parity.")
@click.argument("model")
@click.option("--no-torch", is_flag=True, help="Skip the PyTorch conversion and parity check.")
@click.option("--brief", is_flag=True,
              help="Skip the per-layer table (layers with weights or pooling: shape, parameters, FLOPs, "
                   "receptive field).")
@model_options
def info(model: Model, no_torch: bool, brief: bool) -> None:
    """Inputs, outputs, layout, opset, producer, softmax tail, and torch conversion + parity."""
    rows = facts(model, with_torch=not no_torch)
    for key, value in rows:
        echo(f"{key:<11}{value}")
    if not brief:
        echo(f"\n  {'layer':<48}{'op':<20}{'shape':<22}{'params':>10}{'FLOPs':>10}  receptive field")
        for row in summarize(model):
            if row.params or row.flops or row.op_type in ("MaxPool", "AveragePool", "GlobalAveragePool"):
                echo(f"  {row.name[-47:]:<48}{row.op_type:<20}{shape_text(row.shape):<22}{count_text(row.params):>10}"
                           f"{count_text(row.flops):>10}  {row.field or '-'}")
