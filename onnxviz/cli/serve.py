"""`onnxviz serve`: the local web explorer and explanation service."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import click

from ..errors import DependencyError, OptionError
from ..guard import Limits
from ..model import Model, load
from ..preprocess import Request
from ..serve.security import new_token
from .echo import echo
from .options import image_options, limits_options


def _ids(paths: list[Path]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in paths:
        if not path.is_file():
            raise OptionError(f"model file not found: {path}")
        name, k = path.stem, 1
        while name in found:
            k += 1
            name = f"{path.stem}-{k}"
        found[name] = path
    return found


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@click.command("serve", short_help="A local web explorer and JSON API for one or more models.")
@click.argument("models", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--images", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="A folder of images the page can choose from (nothing outside it is served).")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on; anything but loopback lets other machines knock (with the token).")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64),
              help="Explanations computed at once; more wait in a queue.")
@click.option("--max-steps", default=5000, show_default=True, type=click.IntRange(1),
              help="Most steps, samples or path points one request may ask of a method.")
@click.option("--max-mask-pixels", default=2_000_000_000, show_default=True, type=click.IntRange(1),
              help="Most masks x input pixels one request may ask (RISE, D-RISE).")
@limits_options
@image_options
def serve(models, images, port, host, workers, max_steps, max_mask_pixels, limits: Limits,
          preprocessing: Request) -> None:
    """Serve MODELS: a page to compare models side by side on an image (top-5, any method with live progress and
    Cancel, an opacity slider, the value under the cursor), look into a layer (feature maps, kernels, top patches
    over --images, a channel's visualization) and export what is on screen as the HTML report; and a JSON API (its
    schema at /docs). Every API call needs the random token in the printed URL."""
    try:
        import uvicorn
    except ImportError:
        raise DependencyError('onnxviz serve needs FastAPI and uvicorn: pip install "onnxviz[serve]"') from None
    from ..serve.app import Served, WorkLimits, create_app  # imports FastAPI: only when serving

    def prepare(path: Path) -> Model:  # the image options apply to every served model
        model = load(path, limits=limits, size=preprocessing.size)
        model.use_request(preprocessing)
        return model

    served = Served(_ids(list(models)), new_token(), images, workers, prepare=prepare,
                    limits=WorkLimits(max_steps, max_mask_pixels))
    if not _loopback(host):
        echo(f"warning: listening on {host}: other machines can reach this server; only the token keeps them out",
             err=True)
    echo(f"onnxviz serve: http://{host if host != '0.0.0.0' else '127.0.0.1'}:{port}/?token={served.token}")
    uvicorn.run(create_app(served), host=host, port=port, log_level="warning")
