"""Neural style transfer: an image with the content (activations at one layer) of one image and the style
(Gram matrices at several layers) of another; the ONNX model is the feature network.

Gatys, Ecker & Bethge 2016, https://arxiv.org/abs/1508.06576
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..backends.torch_import import import_torch
from ..errors import OptionError
from ..options import option
from .base import Request, Synthesis, Synthesized
from .loop import to_numpy
from .param import PixelImage
from .regularizers import tv


def gram(features):
    """(B, C, H, W) -> (B, C, C) Gram matrices F F^T / (C H W)."""
    b, c = features.shape[:2]
    flat = features.reshape(b, c, -1)
    return flat @ flat.transpose(1, 2) / flat.shape[1] / flat.shape[2]


def default_layers(model) -> tuple[list[str], str]:
    """(style layers, content layer) when none are given: five spatial activations spread over the first
    three quarters of the network (ReLU outputs when there are any), the content layer the fourth of them."""
    spatial = [layer for layer in model.layers if layer.spatial and layer.op_type in ("Relu", "Clip", "LeakyRelu")]
    spatial = spatial or [layer for layer in model.layers if layer.spatial]
    if not spatial:
        raise OptionError("the model has no spatial layers to take style and content from")
    usable = spatial[: max(1, (3 * len(spatial)) // 4)]
    picks = [usable[round(k * (len(usable) - 1) / 4)].name for k in range(5)]
    style = list(dict.fromkeys(picks))
    return style, style[min(3, len(style) - 1)]


@dataclass(frozen=True)
class StyleOptions:
    style_layers: tuple[str, ...] = option((), "layers whose Gram matrices carry the style (default: 5 spread out)")
    content_layer: str | None = option(None, "layer whose activations carry the content (default: the 4th style one)")
    alpha: float = option(1.0, "content weight")
    beta: float = option(1e4, "style weight")
    tv: float = option(0.0, "total-variation weight")
    steps: int = option(200, "optimizer iterations")
    optimizer: Literal["lbfgs", "adam"] = option("lbfgs", "lbfgs (as Gatys et al.) or adam")
    lr: float = option(0.05, "Adam learning rate (L-BFGS uses 1)")
    init: Literal["content", "noise"] = option("content", "start from the content image or from noise")

    def __post_init__(self):
        if self.steps < 1 or self.alpha < 0 or self.beta < 0:
            raise ValueError("steps >= 1, alpha and beta >= 0")


def stylize(engine, content, style, opts: StyleOptions, desc: str = "style"):
    """Tensors (B, C, H, W) in [0, 1] -> (stylized images, loss per step)."""
    torch = import_torch()
    if opts.style_layers or opts.content_layer:
        layers = [engine.layer(n).name for n in opts.style_layers] or default_layers(engine.model)[0]
        content_layer = engine.layer(opts.content_layer).name if opts.content_layer else layers[-1]
    else:
        layers, content_layer = default_layers(engine.model)
    names = tuple(dict.fromkeys([*layers, content_layer]))
    with torch.no_grad():
        content_goal = dict(zip(names, engine.tensors(content, names), strict=True))[content_layer]
        style_goals = [gram(a) for a in engine.tensors(style, tuple(layers))]
    image = PixelImage(engine, len(content), content if opts.init == "content" else None, scale=1.0)
    history = []

    def raw_loss():
        current = image()
        acts = dict(zip(names, engine.tensors(current, names), strict=True))
        content_loss = (acts[content_layer] - content_goal).pow(2).reshape(len(current), -1).mean(1)
        style_loss = sum((gram(acts[n]) - g).pow(2).reshape(len(current), -1).mean(1)
                         for n, g in zip(layers, style_goals, strict=True))
        return opts.alpha * content_loss + opts.beta * style_loss + opts.tv * tv(current)

    # The optimizer sees the loss relative to its starting value: a network with small activations (open_nsfw:
    # 7e-5) otherwise gives gradients below L-BFGS's tolerance, and it stopped before its first step.
    with torch.no_grad():
        start = raw_loss().clamp(min=1e-30)

    def loss_of():
        loss = raw_loss()
        return loss, loss / start

    with torch.enable_grad(), engine.progress(opts.steps, desc) as bar:
        if opts.optimizer == "adam":
            optimizer = torch.optim.Adam(image.parameters(), lr=opts.lr)
            for _ in range(opts.steps):
                optimizer.zero_grad()
                loss, relative = loss_of()
                relative.sum().backward()
                optimizer.step()
                history.append(loss.detach().cpu().numpy())
                bar.set_postfix(loss=f"{float(history[-1].mean()):.4g}", refresh=False)
                bar.update()
        else:
            optimizer = torch.optim.LBFGS(image.parameters(), lr=1, max_iter=opts.steps, history_size=20,
                                          line_search_fn="strong_wolfe")

            def closure():
                optimizer.zero_grad()
                loss, relative = loss_of()
                relative.sum().backward()
                history.append(loss.detach().cpu().numpy())
                bar.set_postfix(loss=f"{float(history[-1].mean()):.4g}", refresh=False)
                bar.update()
                return relative.sum()

            optimizer.step(closure)
    with torch.no_grad():
        return image(), np.stack(history, axis=1), {"style_layers": list(layers), "content_layer": content_layer}


class StyleTransfer(Synthesis):
    """Content from the first image, style from `style` (the second image when only images are given)."""

    name = "style_transfer"
    needs_style = True
    paper = "https://arxiv.org/abs/1508.06576"
    needs_images = 1
    Options = StyleOptions

    def synthesize(self, engine, request: Request, opts: StyleOptions) -> Synthesized:
        torch = import_torch()
        images = list(request.images)
        style = request.style if request.style is not None else (images.pop() if len(images) > 1 else None)
        if style is None:
            raise OptionError("style_transfer needs a style image: --style IMAGE (or a second image)")
        content = torch.as_tensor(np.stack(images), device=engine.device).permute(0, 3, 1, 2)
        style_t = torch.as_tensor(style[None], device=engine.device).permute(0, 3, 1, 2).expand_as(content)
        result, history, extras = stylize(engine, content, style_t, opts)
        captions = [f"{name} in the style" for name in request.names[: len(images)]]
        return Synthesized(to_numpy(result), captions, history, extras=extras)
