"""`onnxviz attack`: adversarial examples from the command line (a thin call into onnxviz.attack)."""

from __future__ import annotations

from pathlib import Path

import click

from ..attacks.run import attack, attack_names
from ..attacks.views import is_detection
from ..errors import OptionError
from ..estimate import Estimator
from ..model import Model
from .echo import echo
from .options import model_options, out_option


def _classes(text: str | None, what: str) -> list[int] | int | None:
    if text is None:
        return None
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise OptionError(f"--{what} takes a class index, or one per image separated by commas (3,7)") from None
    return values if len(values) > 1 else values[0]

@click.command("attack", short_help="Adversarial examples: white-box (torch) or black-box (onnxruntime).")
@click.argument("model")
@click.argument("images", nargs=-1, required=True)
@click.option("-m", "--method", "method_name", default="pgd", show_default=True,
              help="Attack: fgsm, pgd (white-box); simba, square, one_pixel, hopskipjump (black-box); "
                   "see `onnxviz methods`.")
@click.option("--eps", help="Budget in [0, 1] image space, e.g. 8/255 (the attack's eps option).")
@click.option("--target", help="Class to reach (targeted), or one per image: 3,7. Default: untargeted. On a "
                               "detector, the detection to attack: det:K or box:x0,y0,x1,y1[@CLASS] (it vanishes, or "
                               "turns into --to CLASS).")
@click.option("--to", "to_class", type=click.IntRange(min=0),
              help="With a detection --target: the class the detection must turn into (default: it must vanish).")
@click.option("--label", help="True class(es) to leave (default: the model's clean prediction).")
@click.option("--max-queries", type=click.IntRange(min=1), help="Query budget per image (black-box attacks).")
@click.option("-o", "--option", "options", nargs=2, multiple=True, metavar="KEY VALUE",
              help="Attack option, e.g. -o norm l2 -o steps 40.")
@click.option("--labels", "labels_file", type=click.Path(exists=True, dir_okay=False),
              help="Class names, one per line or a JSON list (default: the model's metadata, if any).")
@click.option("--transfer-to", multiple=True, metavar="OTHER.onnx",
              help="Evaluate the adversarials on another model too (repeatable).")
@click.option("--scale", type=float, help="Perturbation magnification in the figure (default: the largest "
                                          "change fills the range).")
@out_option
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1),
              help="Inputs per backend call.")
@click.option("--seed", default=0, show_default=True, help="Seed of the attack's random draws.")
@click.option("--gradient", type=click.Choice(["auto", "exact", "estimate"]), default="auto", show_default=True,
              help="White-box attacks: torch gradients, estimates through onnxruntime, or torch with an "
                   "estimate when the graph cannot be converted (auto).")
@click.option("--estimator", type=click.Choice(["nes", "spsa"]), default="nes", show_default=True)
@click.option("--queries", type=int, default=200, show_default=True, help="Forward passes per estimated gradient.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@model_options
def attack_command(model: Model, images, method_name, eps, target, to_class, label, max_queries, options, labels_file,
            transfer_to, scale, out, batch_size, seed, gradient, estimator, queries,
            quiet) -> None:
    """Attack IMAGES and write the figure (adversarial, perturbation x SCALE, prediction bars), the
    adversarial PNGs, result.npz (float arrays) and result.json to --out. Budgets live in [0, 1] image
    space: --eps 8/255 means 8 grey levels, whatever the model's normalization."""
    opts = dict(options)
    if eps is not None:
        opts["eps"] = eps
    if max_queries is not None:
        opts["max_queries"] = max_queries
    source = Estimator(estimator, queries) if gradient == "estimate" else gradient
    if method_name not in attack_names():
        raise OptionError(f"{method_name!r} is not an attack; choose one of: {', '.join(attack_names())}")
    chosen = target if target is not None and is_detection(target) else _classes(target, "target")
    result = attack(model, list(images), method_name, target=chosen, to=to_class,
                    labels=_classes(label, "label"), batch_size=batch_size, seed=seed, progress=not quiet,
                    gradient=source,
                    class_names=labels_file, transfer_to=list(transfer_to), **opts)
    written = result.save(out, scale=scale)
    echo(result.summary())
    if "gradient" in result.extras:
        echo(f"note: {result.extras['gradient']}", err=True)
    echo(f"wrote {len(written)} files to {out}/ (figure: {Path(out) / 'attack.png'})")
