"""`onnxviz synthesize`: images made by optimization (a thin call into onnxviz.synthesize)."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import OptionError
from ..model import Model
from ..synthesis import synthesis_names, synthesize
from .echo import echo
from .options import model_options, out_option


@click.command("synthesize", short_help="Feature visualization: maximize, deepdream, invert, style transfer.")
@click.argument("model")
@click.argument("images", nargs=-1)
@click.option("-m", "--method", "method_name", default="maximize", show_default=True,
              help="maximize, deepdream, invert, style_transfer, shape_texture; see `onnxviz methods`.")
@click.option("--objective", help="maximize: LAYER:CHANNEL, LAYER:CHANNEL:Y:X, LAYER:0-15 (one image per "
                                  "channel), class:K or class:0-9, weighted: 'class:3 - 0.5*LAYER:7'.")
@click.option("--layer", help="invert: the layer whose activations are matched (default: the last spatial).")
@click.option("--style", "style_image", type=click.Path(exists=True, dir_okay=False),
              help="style_transfer: the style image (IMAGES are the content).")
@click.option("-o", "--option", "options", nargs=2, multiple=True, metavar="KEY VALUE",
              help="Method option, e.g. -o steps 512 -o l1 10 -o param pixel.")
@click.option("--steps", type=click.IntRange(min=1), help="Optimization steps (the method's steps option).")
@click.option("--gif", "gif_frames", type=click.IntRange(min=2),
              help="Also write synthesis.gif with this many frames (maximize, invert).")
@out_option
@click.option("--seed", default=0, show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@model_options
def synthesize_command(model: Model, images, method_name, objective, layer, style_image, options, steps, gif_frames,
                       out, seed, quiet) -> None:
    """Make images from MODEL: activation maximization (-m maximize --objective SPEC), DeepDream and
    feature inversion of IMAGES, style transfer (IMAGES in the style of --style), and the shape-vs-texture
    probe over IMAGES. Writes synthesis.png (a captioned grid), image_<i>.png, result.json and, with
    --gif, synthesis.gif to --out."""
    if method_name not in synthesis_names():
        raise OptionError(f"{method_name!r} is not a synthesis method; choose one of: "
                          f"{', '.join(synthesis_names())}")
    opts = dict(options)
    if steps is not None:
        opts["steps"] = steps
    if gif_frames is not None:
        opts["frames"] = gif_frames
    result = synthesize(model, method_name, objective, layer=layer, images=list(images), style=style_image,
                        seed=seed, progress=not quiet, **opts)
    written = result.save(out)
    for caption, first, last in zip(result.captions, result.history[:, 0], result.history[:, -1], strict=True):
        echo(f"{caption}: {first:.4g} -> {last:.4g}")
    for key in ("shape_share", "reduction"):
        if key in result.extras:
            echo(f"{key}: {result.extras[key]}")
    echo(f"wrote {len(written)} files to {out}/ (figure: {Path(out) / 'synthesis.png'}) "
               f"in {result.seconds:.1f} s")
