"""Typed method options: a dataclass per method; values from Python or CLI strings are checked and coerced."""

from __future__ import annotations

import dataclasses
import types
import typing
from fractions import Fraction
from typing import Any, Literal

import numpy as np

from .errors import OptionError, suggest


def option(default: Any, help: str) -> Any:  # noqa: A002  (the natural name for a field's help text)
    """A dataclass field with a description, shown by `onnxviz methods NAME`."""
    if isinstance(default, (list, dict, np.ndarray)):
        return dataclasses.field(default_factory=lambda: default, metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """For methods without options."""


def _number(text: str) -> float:
    return float(Fraction(text.strip())) if "/" in text else float(text)


def coerce(value: Any, kind: Any, name: str) -> Any:
    """Turn `value` (possibly a CLI string) into `kind`, or raise an OptionError that says what is expected."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any:
        return value
    if origin is Literal:
        if value not in args:
            raise OptionError(f"option {name}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin in (typing.Union, types.UnionType):
        for member in args:
            if member is type(None):
                if value in (None, "none", "None"):
                    return None
                continue  # a value that is not None is not a NoneType
            try:
                return coerce(value, member, name)
            except (OptionError, ValueError, TypeError):
                continue
        raise OptionError(f"option {name}: {value!r} is not a valid {_describe(kind)}")
    if origin is tuple:
        parts = value.split(",") if isinstance(value, str) else value
        parts = list(parts) if isinstance(parts, (list, tuple, np.ndarray)) else [parts]
        member = args[0] if args else Any
        return tuple(coerce(p, member, name) for p in parts)
    if kind is bool:
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        raise OptionError(f"option {name}: {value!r} is not true or false")
    if kind is int:
        if isinstance(value, (bool, float)) and not float(value).is_integer():
            raise OptionError(f"option {name}: {value!r} is not an integer")
        try:
            return int(value) if not isinstance(value, str) else int(value.strip())
        except (ValueError, TypeError, OverflowError):
            raise OptionError(f"option {name}: {value!r} is not an integer") from None
    if kind is float:
        try:
            return _number(value) if isinstance(value, str) else float(value)
        except (ValueError, ZeroDivisionError, TypeError):
            raise OptionError(f"option {name}: {value!r} is not a number") from None
    if kind is str:
        if not isinstance(value, str):
            raise OptionError(f"option {name}: {value!r} is not a string")
        return value
    if kind is np.ndarray:
        if isinstance(value, str):
            raise OptionError(f"option {name}: an array is only accepted from Python")
        try:
            return np.asarray(value, dtype=np.float32)
        except (ValueError, TypeError):
            raise OptionError(f"option {name}: {value!r} is not an array of numbers") from None
    return value


def _describe(kind: Any) -> str:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args if a is not type(None))  # None: "default" says what it does
    if origin is Literal:
        return " | ".join(map(repr, args))
    if origin is tuple:
        return f"comma-separated list of {_describe(args[0]) if args else 'values'}"
    if kind is np.ndarray:
        return "array"
    return getattr(kind, "__name__", str(kind))


def describe(options_cls: type) -> list[tuple[str, str, Any, str]]:
    """[(name, type description, default, help)] for `onnxviz methods NAME`."""
    hints = typing.get_type_hints(options_cls, include_extras=False)
    rows = []
    for f in dataclasses.fields(options_cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[operator]
        rows.append((f.name, _describe(hints[f.name]), default, f.metadata.get("help", "")))
    return rows


def build(options_cls: type, values: dict[str, Any], method: str) -> Any:
    """An Options instance from user values; unknown keys are an error that lists the valid ones."""
    hints = typing.get_type_hints(options_cls)
    valid = [f.name for f in dataclasses.fields(options_cls)]
    for key in values:
        if key not in valid:
            listed = ", ".join(valid) if valid else "none"
            raise OptionError(f"{method} has no option {key!r}.{suggest(key, valid)} Valid options: {listed}")
    coerced = {k: coerce(v, hints[k], k) for k, v in values.items()}
    try:
        return options_cls(**coerced)
    except (ValueError, TypeError) as exc:
        raise OptionError(f"{method}: {exc}") from exc


def as_dict(opts: Any) -> dict[str, Any]:
    """Options as JSON-friendly values (arrays summarized by shape)."""
    out = {}
    for f in dataclasses.fields(opts):
        v = getattr(opts, f.name)
        out[f.name] = f"array{tuple(v.shape)}" if isinstance(v, np.ndarray) else v
    return out
