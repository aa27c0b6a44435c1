"""`onnxviz explain`: heatmaps of one or more methods for images."""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from .. import api, registry
from ..errors import NumericWarning, OptionError
from ..estimate import Estimator
from ..explainer import Explainer
from ..model import Model
from ..viz.report import write_run
from .echo import echo
from .options import cell_size, model_options, out_option, route_options, target_options


@click.command(short_help="Explain images with one or more methods.")
@click.argument("model")
@click.argument("images", nargs=-1, required=True)
@click.option("-m", "--method", "method_names", multiple=True, default=("gradcam",), show_default=True,
              help="Method name (repeat for several); see `onnxviz methods`.")
@click.option("-o", "--option", "options", nargs=2, multiple=True, metavar="KEY VALUE",
              help="Method option, e.g. -o window 32 or -o occlusion.stride 16.")
@target_options()
@click.option("--layer", help="Tensor or node name, last_conv or conv:-2, for layer methods "
                              "(default: the last spatial layer).")
@out_option
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1),
              help="Inputs per backend call.")
@click.option("--seed", default=0, show_default=True, help="Seed for methods that sample.")
@click.option("--gradient", type=click.Choice(["auto", "exact", "estimate"]), default="auto", show_default=True,
              help="Gradients from torch (exact), black-box estimates through onnxruntime (estimate), or torch "
                   "with an estimate when the graph cannot be converted (auto).")
@click.option("--backend", type=click.Choice(["ort", "torch"]),
              help="Force the gradient source: ort = --gradient estimate, torch = --gradient exact.")
@click.option("--estimator", type=click.Choice(["nes", "spsa"]), default="nes", show_default=True,
              help="Gradient estimator.")
@click.option("--queries", type=int, default=200, show_default=True, help="Forward passes per estimated gradient.")
@click.option("--cells", default="auto", show_default=True, metavar="PIXELS|auto",
              help="Estimated gradients: the side of the square cells directions are drawn on (auto: the smallest "
                   "whose expected cosine with the gradient reaches 0.5; 1: every pixel).")
@click.option("--no-arrays", is_flag=True, help="Write pictures only, no .npz arrays.")
@click.option("--smooth", type=click.FloatRange(0, 1000), default=0.0, show_default=True, metavar="SIGMA",
              help="Blur the drawn maps (sigma in input pixels); the arrays are unchanged.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@model_options
def explain(model: Model, images, method_names, options, target, layer, out, batch_size, seed, gradient, backend,
            estimator, queries, cells, no_arrays, smooth, quiet) -> None:
    """Explain IMAGES with one or more methods; writes overlays, a grid, arrays and index.html to --out."""
    names = list(dict.fromkeys(method_names))
    routed = route_options(options, names)
    classes = {n: registry.get(n) for n in names}
    if layer and not any(c.needs_layer for c in classes.values()):
        raise OptionError(f"--layer is only used by layer methods, and none of {', '.join(names)} takes one")
    x, sizes = api.read_batch(list(images), model)
    gradient = {"ort": "estimate", "torch": "exact"}.get(backend, gradient)
    source = Estimator(estimator, queries, cells=cell_size(cells)) if gradient == "estimate" else gradient
    explainers = {n: Explainer(model, n, layer=layer if classes[n].needs_layer else None, gradient=source,
                               batch_size=batch_size, seed=seed, progress=not quiet, **routed[n]) for n in names}
    results = []
    for n in names:  # every method is resolved above: a bad option or layer fails before any work
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NumericWarning)  # printed below, one line each
            ex = explainers[n].explain(x, target, image_sizes=sizes)
        results.append(ex.with_display(smooth=smooth) if smooth else ex)
        where = f" at {ex.layer}" if ex.layer else ""
        errors = ex.extras.get("relative_completeness_error")
        complete = f", completeness error up to {max(errors):.2%}" if errors else ""
        estimated = f", {ex.extras['gradient']}" if "gradient" in ex.extras else ""
        echo(f"{n}: {ex.backend}{where}, {ex.timings['explain_s']:.2f} s{complete}{estimated}", err=True)
        for note in ex.extras.get("warnings", []):
            echo(f"warning: {n}: {note}", err=True)
    written = write_run(out, results, list(images), model.name, arrays=not no_arrays)
    for i, image in enumerate(images):
        ex = results[0]
        boxes = ex.extras.get("region_boxes")
        region = ""
        if boxes:  # say which pixels were meant, in the output's own coordinates
            h, w = ex.extras["region_space"]
            region = f" over box {','.join(map(str, boxes[i]))} of the {w}x{h} output"
        explained = ex.extras.get("explained")
        what = f"explained {explained[i]}" if explained else f"explained class {int(ex.targets[i])}{region}"
        echo(f"{Path(image).name}: predicted {int(ex.predictions[i])}, {what} (score {float(ex.scores[i]):.4g})")
    echo(f"wrote {len(written)} files to {out}/ (open {Path(out) / 'index.html'})")
