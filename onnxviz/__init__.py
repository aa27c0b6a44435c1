"""onnxviz: explain and visualize vision models from nothing but an ONNX file."""

import os as _os

from .imageheader import MAX_PIXELS as _MAX_PIXELS

# OpenCV reads its pixel cap when it loads: set it before any of our modules imports cv2
_os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(_MAX_PIXELS))
_os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")  # its warnings would break the one-line error rule
from .api import explain, load_image, methods
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
from .evaluate import compare
from .explanation import Explanation
from .guard import Limits
from .method import Method, MethodOutput
from .model import Model, load
from .options import option
from .preprocess import Preprocessing
from .registry import register
from .synthesis import Synthesis, SynthesisResult, synthesize
from .targets import Target

__version__ = "0.1.0"

__all__ = [
    "Attack",
    "AttackResult",
    "Context",
    "ConversionError",
    "DependencyError",
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
    "explain",
    "load",
    "load_image",
    "methods",
    "option",
    "register",
    "synthesize",
]
