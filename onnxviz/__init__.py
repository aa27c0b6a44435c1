"""onnxviz: explain and visualize vision models from nothing but an ONNX file.

The public names load on first use (PEP 562): `import onnxviz` stays cheap, and the command line can take over
Ctrl-C before numpy, onnxruntime or torch are imported."""

from __future__ import annotations

import os as _os
from typing import TYPE_CHECKING

from .imageheader import MAX_PIXELS as _MAX_PIXELS
from .lazy import exports as _exports

# OpenCV reads its pixel cap when it loads: set it before any of our modules imports cv2
_os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(_MAX_PIXELS))
_os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")  # its warnings would break the one-line error rule

__version__ = "0.1.0"

_EXPORTS = {
    ".api": ("explain", "load_image", "plugins"),
    ".attacks": ("Attack", "AttackResult", "Oracle", "attack"),
    ".context": ("Context",),
    ".errors": ("ConversionError", "DependencyError", "ImageError", "LayerError", "MethodError", "ModelError",
                "OnnxvizError", "OptionError", "TargetError"),
    ".evaluation": ("compare", "evaluate"),
    ".explainer": ("Explainer",),
    ".explanation": ("Explanation",),
    ".guard": ("Limits",),
    ".method": ("Method", "MethodOutput"),
    ".model": ("Model", "load"),
    ".options": ("option",),
    ".preprocess": ("Preprocessing",),
    ".registry": ("register",),
    ".synthesis": ("Synthesis", "SynthesisResult", "synthesize"),
    ".targets": ("Target",),
    ".viz.notebook": ("show",),
}

__all__ = [
    "Attack",
    "AttackResult",
    "Context",
    "ConversionError",
    "DependencyError",
    "Explainer",
    "Explanation",
    "ImageError",
    "LayerError",
    "Limits",
    "Method",
    "MethodError",
    "MethodOutput",
    "Model",
    "ModelError",
    "OnnxvizError",
    "OptionError",
    "Oracle",
    "Preprocessing",
    "Synthesis",
    "SynthesisResult",
    "Target",
    "TargetError",
    "__version__",
    "attack",
    "compare",
    "evaluate",
    "explain",
    "load",
    "load_image",
    "option",
    "plugins",
    "register",
    "show",
    "synthesize",
]


__getattr__, __dir__ = _exports(__name__, _EXPORTS)


if TYPE_CHECKING:  # what type checkers and IDEs see
    from .api import explain, load_image, plugins
    from .attacks import Attack, AttackResult, Oracle, attack
    from .context import Context
    from .errors import (
        ConversionError,
        DependencyError,
        ImageError,
        LayerError,
        MethodError,
        ModelError,
        OnnxvizError,
        OptionError,
        TargetError,
    )
    from .evaluation import compare, evaluate  # type: ignore[no-redef]  # mypy also sees the submodule evaluation.compare
    from .explainer import Explainer
    from .explanation import Explanation
    from .guard import Limits
    from .method import Method, MethodOutput
    from .model import Model, load
    from .options import option
    from .preprocess import Preprocessing
    from .registry import register
    from .synthesis import Synthesis, SynthesisResult, synthesize
    from .targets import Target
    from .viz.notebook import show
