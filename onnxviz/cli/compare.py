"""`onnxviz compare`: several models on the same images, side by side, with pairwise agreement."""

from __future__ import annotations

import click

from ..errors import OptionError
from ..evaluation.compare import compare
from ..model import load
from .echo import echo
from .options import image_options, limits_options, out_option, target_options


@click.command("compare", short_help="Several models on the same images: predictions, maps, agreement.")
@click.argument("files", nargs=-1, required=True)
@click.option("-m", "--method", "methods", multiple=True, default=("gradcam",), show_default=True,
              help="Method (repeat for several).")
@target_options(default=None, help_default="What every model explains (default: the first model's prediction). ")
@click.option("--tolerance", type=float, default=1e-3, show_default=True,
              help="Largest logit difference between exports of one network, relative to max(1, |logit|).")
@out_option
@click.option("--quiet", "-q", is_flag=True)
@limits_options
@image_options
def compare_command(files, methods, target, tolerance, out, quiet, limits, preprocessing) -> int:
    """FILES: two or more models (.onnx) and one or more images. Writes compare.png (one row per image, one
    column per model and method) and compare.json, and prints, for every pair of models, the output
    difference, top-1 agreement, and the Spearman correlation, top-10% IoU and SSIM of their maps. Two
    exports of one network (same parameter count and classes) whose outputs differ beyond --tolerance are
    flagged as an export problem (exit code 2). --preprocess / --mean / --std apply to every model."""
    paths = [f for f in files if f.lower().endswith(".onnx")]
    images = [f for f in files if not f.lower().endswith(".onnx")]
    if len(paths) < 2 or not images:
        raise OptionError(f"compare needs two or more .onnx models and at least one image; got {len(paths)} "
                          f"model(s) and {len(images)} image(s)")
    models = [load(p, limits=limits, size=preprocessing.size) for p in paths]
    for model in models:
        model.use_request(preprocessing)
    result = compare(models, images, list(methods), target, tolerance, progress=not quiet)
    written = result.save(out)
    for name, preds in result.predictions.items():
        echo(f"{name}: predicts {preds}")
    for pair in result.pairs:
        echo(pair.describe())
    echo(f"wrote {', '.join(str(p) for p in written)}")
    return 2 if any(p.export_problem for p in result.pairs) else 0  # the files are kept either way
