"""`onnxviz inspect ...`: kernels, feature maps, embeddings and top-k patches (onnxruntime only)."""

from __future__ import annotations

from pathlib import Path

import click

from ..api import load_image
from ..inspect.embed import embed as embed_images
from ..inspect.embed import scatter_html, scatter_png
from ..inspect.features import feature_grid, feature_maps
from ..inspect.folders import labelled_images
from ..inspect.kernels import kernel_grid, weight_stats
from ..inspect.patches import parse_channels, patch_grid
from ..inspect.patches import top_patches as find_top_patches
from ..inspect.projections import project as projections
from ..io import save_png, write_bytes_atomic
from ..model import Model
from .echo import echo
from .options import model_options, out_option


@click.group("inspect", short_help="Kernels, feature maps, embeddings, top-k patches (no torch needed).")
def inspect_group() -> None:
    """Look inside a model: conv kernels and weight statistics, feature maps of an image, embeddings of a
    folder, and the patches that excite each filter most."""

@inspect_group.command(short_help="Conv kernels as a picture, and weight statistics per layer.")
@click.argument("model")
@click.option("--layer", help="Conv output tensor (default: the first Conv).")
@click.option("--mode", type=click.Choice(["auto", "rgb", "per-input", "mean"]), default="auto", show_default=True,
              help="rgb: 3 input channels as colour; per-input: a cell per input channel; mean: averaged.")
@out_option
@model_options
def kernels(model: Model, layer, mode, out) -> None:
    """Writes kernels.png (scaled min..max of the layer to 0..255) and prints min / max / mean / std /
    sparsity / parameters of every Conv."""
    picture, what = kernel_grid(model, layer, mode)
    path = save_png(Path(out) / "kernels.png", picture)
    echo(f"{'layer':<44}{'shape':<20}{'params':>9}{'min':>10}{'max':>10}{'mean':>10}{'std':>10}"
               f"{'zeros':>8}")
    for s in weight_stats(model):
        echo(f"{s.layer[-43:]:<44}{s.shape!s:<20}{s.params:>9}{s.min:>10.4g}{s.max:>10.4g}"
                   f"{s.mean:>10.3g}{s.std:>10.3g}{s.sparsity:>8.1%}")
    echo(f"wrote {path} ({what})")

@inspect_group.command(short_help="Feature maps of an image at a layer.")
@click.argument("model")
@click.argument("image")
@click.option("--layer", help="Layer (default: the last spatial layer).")
@click.option("--top", type=click.IntRange(min=1), help="Only the k channels with the highest mean activation.")
@click.option("--overlay", is_flag=True, help="Blend each map on the image.")
@out_option
@model_options
def features(model: Model, image, layer, top, overlay, out) -> None:
    """Writes features.png: one cell per channel, each map scaled on its own."""

    x = load_image(image, model)
    found = feature_maps(model, x, layer, top)
    picture = feature_grid(found, model.preprocessing.invert(x[0]) if overlay else None)
    path = save_png(Path(out) / "features.png", picture)
    echo(f"wrote {path}: {len(found['channels'])} channels of {found['layer']}")

@inspect_group.command(short_help="2-D embedding of a folder's pooled activations (PNG + HTML).")
@click.argument("model")
@click.argument("folders", nargs=-1, required=True)
@click.option("--layer", help="Layer whose activations are pooled (default: the last spatial layer).")
@click.option("--method", type=click.Choice(["pca", "tsne"]), default="pca", show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@out_option
@click.option("--quiet", "-q", is_flag=True)
@model_options
def embed(model: Model, folders, layer, method, seed, batch_size, out, quiet) -> None:
    """Sub-folder names are the labels when the images sit in several folders; otherwise points are
    coloured by the model's prediction. Writes embed.png, embed.html and embed.csv."""
    paths, labels = labelled_images(list(folders))
    e = embed_images(model, paths, layer, method, labels, seed, batch_size, not quiet)
    title = f"{model.name}: {e.layer} ({method.upper()}, coloured by {e.label_kind})"
    rows = "path,label,x,y\n" + "".join(f"{p},{lab},{x:.6g},{y:.6g}\n" for p, lab, (x, y) in
                                        zip(e.paths, e.labels, e.points, strict=True))
    written = [save_png(Path(out) / "embed.png", scatter_png(e)),
               write_bytes_atomic(Path(out) / "embed.html", scatter_html(e, title).encode()),
               write_bytes_atomic(Path(out) / "embed.csv", rows.encode())]
    echo(f"{len(paths)} images, {len(set(e.labels))} {e.label_kind}s; wrote "
               f"{', '.join(str(p) for p in written)}")

@inspect_group.command("top-patches", short_help="The k input patches that excite each filter most.")
@click.argument("model")
@click.argument("folders", nargs=-1, required=True)
@click.option("--layer", help="Layer (default: the last spatial layer).")
@click.option("--channels", help="Channels, e.g. 0-7,12 (default: the first 16).")
@click.option("-k", "k", default=9, show_default=True, type=click.IntRange(min=1))
@click.option("--project", type=click.Choice(["deconvnet", "guided_backprop"]),
              help="Beside each patch, that single activation projected back to pixels (Zeiler & Fergus; needs "
                   "the torch extra).")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@out_option
@click.option("--quiet", "-q", is_flag=True)
@model_options
def top_patches(model: Model, folders, layer, channels, k, project, batch_size, out, quiet) -> None:
    """One row per channel: its k strongest responses over the images, cropped to the receptive field
    computed from the graph (with --project, each followed by its deconvnet or guided-backprop projection).
    Writes top_patches.png."""
    paths, _ = labelled_images(list(folders))
    hits, rf, name = find_top_patches(model, paths, layer, parse_channels(channels), k, batch_size, not quiet)
    shown = projections(model, hits, paths, name, rf, project, not quiet) if project else None
    path = save_png(Path(out) / "top_patches.png", patch_grid(hits, paths, projections=shown, method=project or ""))
    echo(f"{name}: receptive field {rf}; {len(hits)} channels x {k} patches from {len(paths)} images; "
               f"wrote {path}")
