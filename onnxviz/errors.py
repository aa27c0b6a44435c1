"""The OnnxvizError hierarchy: every user-facing failure is one of these, with a message that says
what is wrong, the valid choices and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class OnnxvizError(Exception):
    """Base class of every error onnxviz raises on purpose."""


class ModelError(OnnxvizError):
    """The model file cannot be read, checked or run."""


class ConversionError(OnnxvizError):
    """The graph cannot be converted to PyTorch, or the conversion disagrees with onnxruntime."""


class LayerError(OnnxvizError):
    """A layer name that the graph does not have."""


class TargetError(OnnxvizError):
    """A target that is malformed or out of range."""


class MethodError(OnnxvizError):
    """An unknown method, a broken plugin, or a method that returned something invalid."""


class OptionError(OnnxvizError):
    """An unknown option or a value of the wrong type."""


class ImageError(OnnxvizError):
    """An image that cannot be read or is too large."""


class OutputError(OnnxvizError):
    """The output folder cannot be created or written."""


class DependencyError(OnnxvizError):
    """An optional dependency (torch, onnx2torch) is missing."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (native libraries write pages), or its type when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def brief(exc: BaseException, lines: int = 3, limit: int = 500) -> str:
    """The first few lines of an exception's message joined into one (onnxruntime puts the detail that matters,
    such as which index got which size, on the second line), cut at `limit` characters."""
    text = " ".join(line.strip() for line in str(exc).strip().splitlines()[:lines] if line.strip())
    return (text or type(exc).__name__)[:limit]


def suggest(name: str, choices: Iterable[str], n: int = 3) -> str:
    """' Did you mean: a, b?' for the closest choices, or '' when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=n, cutoff=0.5)
    return f" Did you mean: {', '.join(close)}?" if close else ""


class GuessWarning(UserWarning):
    """onnxviz guessed how to feed the model (its preprocessing, its input size): said on every command that
    reads images, in every page and result (extras["assumptions"]), with how to correct it."""


class InputWarning(UserWarning):
    """What onnxviz is fed disagrees with what the graph does to it (a graph that normalizes its input itself, given
    normalized values)."""


class NumericWarning(UserWarning):
    """NaN / Inf or all-zero attributions, reported next to the result (extras["warnings"])."""
