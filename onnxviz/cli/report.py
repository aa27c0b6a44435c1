"""`onnxviz report`: one self-contained HTML page of predictions, overlays and metrics."""

from __future__ import annotations

import click

from ..model import Model
from ..report import report
from .echo import echo
from .options import model_options, out_option, route_options, target_options


@click.command("report", short_help="One self-contained HTML page: predictions, overlays, metrics, model facts.")
@click.argument("model")
@click.argument("images", nargs=-1, required=True)
@click.option("-m", "--method", "method_names", multiple=True, default=("gradcam", "occlusion"), show_default=True,
              help="Method (repeat for several).")
@click.option("-o", "--option", "options", nargs=2, multiple=True, metavar="KEY VALUE",
              help="Method option, e.g. -o occlusion.window 8.")
@click.option("--no-metrics", is_flag=True, help="Skip deletion / insertion AUC and average drop.")
@click.option("--labels", "labels_file", type=click.Path(exists=True, dir_okay=False),
              help="Class names, one per line or a JSON list (default: the model's metadata, if any).")
@target_options()
@out_option
@click.option("--quiet", "-q", is_flag=True)
@model_options
def report_command(model: Model, images, method_names, options, no_metrics, labels_file, target, out,
                   quiet) -> None:
    """Explain IMAGES with every method and write report.html: the model's facts, top-5 predictions, each
    method's overlay, and the faithfulness metrics; images embedded, nothing else needed to view it."""
    names = list(dict.fromkeys(method_names))
    path = report(model, list(images), names, out, metrics=not no_metrics, options=route_options(options, names),
                  class_names=labels_file, progress=not quiet, target=target)
    echo(f"wrote {path}")
