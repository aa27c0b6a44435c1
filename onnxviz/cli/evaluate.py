"""`onnxviz evaluate`: deletion / insertion AUC, average drop / increase, sparseness and complexity, localization
against a ground truth, infidelity and sensitivity-max, and the randomization sanity check."""

from __future__ import annotations

import click
import numpy as np

from ..evaluation import evaluate
from ..evaluation.run import METRICS
from ..model import Model
from .echo import echo
from .options import model_options, out_option, target_options


@click.command("evaluate", short_help="How faithful explanations are: deletion/insertion AUC, sanity checks.")
@click.argument("model")
@click.argument("images", nargs=-1, required=True)
@click.option("-m", "--method", "methods", multiple=True, default=("gradcam",), show_default=True)
@click.option("--steps", default=32, show_default=True, type=click.IntRange(min=2),
              help="Points on the deletion / insertion curves.")
@click.option("--metric", "metrics", multiple=True, type=click.Choice(METRICS), default=("faithfulness", "complexity"),
              show_default=True, help="Which scores (repeat the option for several).")
@click.option("--ground-truth", default=None, metavar="BOX|MASK",
              help="Where the object is, for the localization metrics: a box x0,y0,x1,y1 in input pixels, or a mask "
                   "image / .npy (non-zero inside) of the model's input size.")
@click.option("--n-perturb", default=10, show_default=True, type=click.IntRange(min=1),
              help="Perturbations per image for infidelity and sensitivity.")
@click.option("--sanity", is_flag=True, help="Also run the cascading-randomization sanity check.")
@target_options()
@out_option
@model_options
def evaluate_command(model: Model, images, methods, steps, metrics, ground_truth, n_perturb, sanity, target,
                     out) -> None:
    """For each method: deletion AUC (probability as the most important pixels are removed; lower is
    better), insertion AUC (as they are revealed on a blurred copy; higher is better), average drop and
    increase in confidence when the image is masked by its map, and with --sanity the similarity of the
    maps as the weights are randomized from the top layer down (a faithful method must change). A target that
    is no class (det:, similar:, unit:, value:) is followed by its own score instead of the probability.
    --metric adds sparseness (Gini) and complexity (entropy), localization (pointing game, relevance mass and
    rank accuracy against --ground-truth), infidelity and sensitivity-max (seeded perturbations). Prints means
    over the images; evaluate.json has every image's value."""
    result = evaluate(model, list(images), methods, steps=steps, sanity=sanity, target=target, metrics=metrics,
                      ground_truth=ground_truth, n_perturb=n_perturb)
    if result.faithfulness:
        echo(f"{'method':<24}{'deletion AUC':>14}{'insertion AUC':>15}{'avg drop %':>12}{'increase %':>12}")
    for method in dict.fromkeys([*result.faithfulness, *result.scores]):
        if method in result.faithfulness:
            scores = result.faithfulness[method]
            echo(f"{method:<24}{scores.deletion_auc.mean():>14.4f}{scores.insertion_auc.mean():>15.4f}"
                 f"{scores.average_drop:>12.1f}{scores.increase:>12.1f}")
        extra = result.scores.get(method, {})
        if extra:
            echo(f"  {method}: " + ", ".join(f"{name} {values.mean():.4g}" for name, values in extra.items()))
        if method in result.sanity:
            check = result.sanity[method]
            verdict = "passes" if check.passed else "FAILS (its maps barely change)"
            echo(f"  sanity: Spearman |map| vs original as layers are randomized top-down "
                 f"{np.round(check.spearman_abs, 3).tolist()} -> {verdict}")
    echo(f"wrote {result.save(out)}")
