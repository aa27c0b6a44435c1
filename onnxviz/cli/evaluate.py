"""`onnxviz evaluate`: deletion / insertion AUC, average drop / increase, and the randomization sanity check."""

from __future__ import annotations

import click
import numpy as np

from ..evaluation import evaluate
from ..model import Model
from .options import echo, model_options, out_option, target_options


@click.command("evaluate", short_help="How faithful explanations are: deletion/insertion AUC, sanity checks.")
@click.argument("model")
@click.argument("images", nargs=-1, required=True)
@click.option("-m", "--method", "methods", multiple=True, default=("gradcam",), show_default=True)
@click.option("--steps", default=32, show_default=True, type=click.IntRange(min=2),
              help="Points on the deletion / insertion curves.")
@click.option("--sanity", is_flag=True, help="Also run the cascading-randomization sanity check.")
@target_options()
@out_option
@model_options
def evaluate_command(model: Model, images, methods, steps, sanity, target, out) -> None:
    """For each method: deletion AUC (probability as the most important pixels are removed; lower is
    better), insertion AUC (as they are revealed on a blurred copy; higher is better), average drop and
    increase in confidence when the image is masked by its map, and with --sanity the similarity of the
    maps as the weights are randomized from the top layer down (a faithful method must change). A target that
    is no class (det:, similar:, unit:, value:) is followed by its own score instead of the probability.
    Writes evaluate.json."""
    result = evaluate(model, list(images), methods, steps=steps, sanity=sanity, target=target)
    echo(f"{'method':<24}{'deletion AUC':>14}{'insertion AUC':>15}{'avg drop %':>12}{'increase %':>12}")
    for method, scores in result.faithfulness.items():
        echo(f"{method:<24}{scores.deletion_auc.mean():>14.4f}{scores.insertion_auc.mean():>15.4f}"
             f"{scores.average_drop:>12.1f}{scores.increase:>12.1f}")
        if method in result.sanity:
            check = result.sanity[method]
            verdict = "passes" if check.passed else "FAILS (its maps barely change)"
            echo(f"  sanity: Spearman |map| vs original as layers are randomized top-down "
                 f"{np.round(check.spearman_abs, 3).tolist()} -> {verdict}")
    echo(f"wrote {result.save(out)}")
