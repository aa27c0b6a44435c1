"""`onnxviz robustness`: confidence and top-1 as noise and blur grow."""

from __future__ import annotations

import click

from ..errors import OptionError
from ..imagefiles import find_images
from ..model import Model
from ..robustness import noise_robustness
from .echo import echo
from .options import model_options, out_option


@click.command(short_help="Confidence and top-1 against noise and blur levels (CSV + PNG).")
@click.argument("model")
@click.argument("images", nargs=-1, required=True)
@click.option("--labels-from-folders", is_flag=True,
              help="Each image's class index is the name of its folder (for top-1 accuracy).")
@click.option("--target", type=int, help="Class whose confidence is tracked (default: each image's clean top-1).")
@click.option("--levels", default=11, show_default=True, type=click.IntRange(min=2), help="Levels per noise.")
@click.option("--seed", default=0, show_default=True)
@out_option
@model_options
def robustness(model: Model, images, labels_from_folders, target, levels, seed, out) -> None:
    """Mean confidence in the target and top-1 accuracy as Gaussian, salt-and-pepper and uniform noise and
    blur grow. IMAGES are files or folders."""
    paths = find_images(list(images))
    labels = None
    if labels_from_folders:
        try:
            labels = [int(p.parent.name) for p in paths]
        except ValueError:
            raise OptionError("--labels-from-folders needs folders named by class index (0, 1, ...)") from None
    result = noise_robustness(model, paths, labels, levels, target, seed)
    written = result.save(out)
    for noise in dict.fromkeys(r[0] for r in result.rows):
        last = [r for r in result.rows if r[0] == noise][-1]
        echo(f"{noise:<12} at level {last[1]:.3g}: confidence {last[2]:.3f}, top-1 {last[3]:.3f}")
    echo(f"wrote {', '.join(str(p) for p in written)} ({len(paths)} images, {result.accuracy_kind})")
