"""`onnxviz tcav`: does a concept (stripes, wheels...) drive a class? TCAV scores per concept and layer."""

from __future__ import annotations

import click

from ..errors import OptionError
from ..model import Model
from ..tcav import tcav
from .echo import echo
from .options import model_options, out_option


def _concept(text: str) -> tuple[str, str]:
    name, sep, folder = text.partition("=")
    if not sep or not name or not folder:
        raise OptionError(f"--concept takes NAME=FOLDER (e.g. stripes=concepts/stripes), not {text!r}")
    return name, folder


@click.command("tcav", short_help="TCAV: which concepts (image folders) a class is sensitive to, per layer.")
@click.argument("model")
@click.argument("images", nargs=-1, required=True)
@click.option("--concept", "concepts", multiple=True, required=True, metavar="NAME=FOLDER",
              help="A concept and the folder of its example images (repeat for several).")
@click.option("--random", "randoms", multiple=True, required=True, metavar="FOLDER",
              help="Random images (repeat for several sets; with one, each run draws its own subsets).")
@click.option("--layer", "layers", multiple=True, required=True, help="Layer to test (repeat for several).")
@click.option("--target", type=int, default=None, help="Class index (default: each image's top class).")
@click.option("--runs", default=10, show_default=True, type=click.IntRange(min=2),
              help="Concept vectors per concept and layer, each against another random set.")
@click.option("--alpha", default=0.05, show_default=True, type=click.FloatRange(0, 1, min_open=True),
              help="Significance level of the two-sided t-test against random-vs-random vectors.")
@click.option("--seed", default=0, show_default=True)
@out_option
@model_options
def tcav_command(model: Model, images, concepts, randoms, layers, target, runs, alpha, seed, out) -> None:
    """For each concept and layer: a linear classifier separates the concept's images from random ones in the
    layer's activations; the TCAV score is the share of IMAGES whose class score rises along the concept's
    direction. Repeated --runs times, against as many random-vs-random directions; a two-sided t-test marks the
    concepts that matter (*). Writes tcav.json and a bar chart tcav.png."""
    named = dict(_concept(c) for c in concepts)
    result = tcav(model, list(images), {k: [v] for k, v in named.items()}, [[r] for r in randoms], layers,
                  target=target, runs=runs, seed=seed, alpha=alpha)
    echo(f"{'concept':<16}{'layer':<32}{'TCAV':>7}{'random':>8}{'p':>9}{'accuracy':>10}")
    for r in result.results:
        star = " *" if r.significant(alpha) else ""
        echo(f"{r.concept[:15]:<16}{r.layer[-31:]:<32}{r.scores.mean():>7.2f}{r.random_scores.mean():>8.2f}"
             f"{r.p_value:>9.2g}{r.accuracies.mean():>10.2f}{star}")
    echo(f"wrote {', '.join(str(p) for p in result.save(out))}")
