"""`onnxviz batch`: every image of a folder, glob or list explained, with a manifest; resumable."""

from __future__ import annotations

import click

from ..batch import batch as run_batch
from .echo import echo
from .options import TARGET_HELP, image_options, limits_options, route_options


@click.command("batch", short_help="Explain a whole folder, glob or list of images (local or Ray), resumably.")
@click.argument("model")
@click.argument("source")
@click.option("-m", "--method", "method_names", multiple=True, default=("gradcam",), show_default=True,
              help="Method name (repeat for several).")
@click.option("-o", "--option", "options", nargs=2, multiple=True, metavar="KEY VALUE",
              help="Method option, e.g. -o window 32 or -o occlusion.stride 16.")
@click.option("--out", default="batch", show_default=True, type=click.Path(file_okay=False),
              help="Output folder; rerunning into it resumes the run.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: worker processes on this machine; ray: Ray Data actors (pip install 'onnxviz[ray]').")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Worker processes (local) or actors (ray), each holding the model once.")
@click.option("--threads", type=click.IntRange(min=1),
              help="onnxruntime / torch threads per worker (default: cores / workers; 1 per Ray actor).")
@click.option("--save", default="npz", show_default=True,
              help="What to write per item besides the manifest row: npz, png (overlay), both (npz,png) or none.")
@click.option("--target", default="top1", show_default=True,
              help="label (each item's label from a CSV / Parquet list), or one target for every image: " + TARGET_HELP)
@click.option("--layer", help="Layer for CAM methods (default: the last spatial layer).")
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(min=1),
              help="Images per chunk (a chunk is what one worker explains at a time).")
@click.option("--seed", default=0, show_default=True, help="Seed for methods that sample.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
              help="With ray, actors get one GPU each when the cluster has them.")
@click.option("--retry-failed", is_flag=True, help="Run the items that failed in an earlier run again.")
@click.option("--overwrite", is_flag=True, help="Start over: forget the manifest and files of an earlier run.")
@click.option("--ray-address", help="An existing Ray cluster (default: start one on this machine).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@limits_options
@image_options
def batch(model, source, method_names, options, out, engine, workers, threads, save, target, layer, batch_size,
          seed, device, retry_failed, overwrite, ray_address, quiet, limits, preprocessing) -> None:
    """Explain every image of SOURCE (a folder, a glob in quotes, or a .csv / .parquet / .txt list with a path
    column and an optional label column) with MODEL; writes manifest.jsonl (+ manifest.parquet with pyarrow),
    arrays/, overlays/ and summary.html to --out. Rerun the same command to resume after a crash or Ctrl-C."""
    names = list(dict.fromkeys(method_names))
    result = run_batch(model, source, names, out, engine=engine, workers=workers, save=save, target=target, layer=layer,
                 options=route_options(options, names), batch_size=batch_size, seed=seed, device=device,
                 retry_failed=retry_failed, overwrite=overwrite, ray_address=ray_address, limits=limits,
                 threads=threads, progress=not quiet, preprocessing=preprocessing)
    echo(result.summary())
