"""Turning what a user named into ready parts, once, before any long computation: the plugin class and its
instance (of the kind asked for), typed options, and where gradients come from. The Explainer, the attack runner
and the synthesis runner all build on these."""

from __future__ import annotations

import warnings
from typing import Any, TypeVar

import numpy as np

from . import registry
from .errors import ConversionError, MethodError, OptionError
from .estimate import Estimator
from .method import Method
from .model import Model
from .options import build
from .plugin import PLURAL, Plugin

P = TypeVar("P", bound=Plugin)


def plugin(method: str | type | object, kind: type[P]) -> tuple[type[P], P]:
    """(class, instance) for a registered name, a class or an instance, which must be of `kind`."""
    if isinstance(method, str):
        cls = registry.get(method)
    else:
        cls = registry.validate(method if isinstance(method, type) else type(method), repr(method))
    if not issubclass(cls, kind):
        what = {"attack": f"{cls.name} is an attack, not an explanation: use onnxviz.attack(...) or `onnxviz attack "
                          f"MODEL IMAGE -m {cls.name}`",
                "synthesis": f"{cls.name} makes images, it does not explain them: use onnxviz.synthesize(...) or "
                             f"`onnxviz synthesize MODEL -m {cls.name}`",
                "method": f"{cls.name} is {registry.kind_name(cls)}: use onnxviz.explain(...) or `onnxviz explain "
                          f"MODEL IMAGE -m {cls.name}`"}[cls.kind]
        raise MethodError(f"{cls.name} is not {registry.kind_name(kind)} ({what}); the {PLURAL[kind.kind]}: "
                          f"{', '.join(registry.names(kind))}")
    return cls, (method if isinstance(method, cls) else cls())


def options(cls: type[Plugin], values: dict[str, Any] | None) -> Any:
    """The plugin's typed Options from user values (unknown keys and bad values are OptionErrors)."""
    return build(cls.Options, values or {}, cls.name)


def check_input(model: Model, cls: type[Method]) -> None:
    """Methods that need an image, or gradients, refused with the reason when the model's input cannot give them."""
    spec = model.input
    if not spec.layout and (cls.needs_image or cls.needs_layer or cls.output == "map"):
        raise MethodError(f"{cls.name} explains images, but the model's input {spec.name!r} has shape "
                          f"{list(spec.shape)} (not N,C,H,W or N,H,W,C); for other inputs use saliency, "
                          "input_x_gradient, integrated_gradients, smoothgrad or finite_difference")
    if cls.requires == "gradients" and not np.issubdtype(spec.dtype, np.floating) and not model.pixels_cast_to_float:
        raise MethodError(f"{cls.name} needs gradients, but the model's input is {spec.dtype} and is not cast to a "
                          "float first (token ids, indices): no gradient flows through it. Use a forward-only method "
                          "(occlusion, rise, finite_difference)")


def gradient_source(model: Model, cls: type[Plugin], gradient: str | Estimator) -> Estimator | None:
    """None for exact (torch) gradients, or the estimator: asked for ("estimate" or an Estimator), or the fallback
    of "auto" when torch cannot run the graph (a warning says so). "exact" insists on torch."""
    if gradient not in ("auto", "exact", "estimate") and not isinstance(gradient, Estimator):
        raise OptionError(f"gradient must be auto, exact or estimate, not {gradient!r}")
    if cls.requires != "gradients":
        return None
    estimator = gradient if isinstance(gradient, Estimator) else Estimator()
    wants_estimate = isinstance(gradient, Estimator) or gradient == "estimate"
    if wants_estimate and not cls.estimable:
        raise MethodError(f"{cls.name} needs layer gradients or modified ReLUs: it cannot use estimated gradients "
                          "(use --gradient exact, or a forward-only method such as scorecam or occlusion)")
    if wants_estimate:
        return estimator
    try:
        model.gradient_backend()
        return None
    except ConversionError as exc:  # a missing torch stays an error that says how to install it
        if gradient == "exact" or not cls.estimable:
            raise
        warnings.warn(f"onnxviz: {exc} Falling back to an {estimator.describe()}.", stacklevel=4)
        return estimator
