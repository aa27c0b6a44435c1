"""Method discovery through the entry-point group `onnxviz.methods`; built-ins are registered the same way."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import entry_points

from .errors import MethodError, suggest
from .method import FAMILIES, Method

GROUP = "onnxviz.methods"
# keywords of onnxviz.explain: an option with one of these names could never be set
RESERVED_OPTIONS = {"target", "layer", "batch_size", "seed", "progress", "prepared", "preprocessing", "gradient"}


@dataclass
class Entry:
    name: str
    target: str  # "module:Class"
    dist: str  # distribution that declared it
    cls: type[Method] | None = None
    error: str | None = None  # why it could not be loaded
    conflict: str | None = None  # another distribution claiming the same name


_runtime: dict[str, Entry] = {}


@lru_cache(maxsize=1)
def _declared() -> dict[str, Entry]:
    found: dict[str, Entry] = {}
    for ep in entry_points(group=GROUP):
        dist = ep.dist.name if ep.dist else "?"
        entry = Entry(ep.name, ep.value, dist)
        if ep.name in found and found[ep.name].dist != dist:
            found[ep.name].conflict = dist
            continue
        found[ep.name] = entry
    return found


def _entries() -> dict[str, Entry]:
    return {**_declared(), **_runtime}


def validate(cls: object, where: str) -> type[Method]:
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise MethodError(f"{where} is not a subclass of onnxviz.Method")
    taken = RESERVED_OPTIONS & {f.name for f in dataclasses.fields(cls.Options)}
    if taken:
        raise MethodError(f"{where}: option names {sorted(taken)} are taken by onnxviz.explain itself; rename them")
    if cls.family not in FAMILIES:
        raise MethodError(f"{where}: family {cls.family!r} is not one of {', '.join(FAMILIES)}")
    if cls.requires not in ("forward", "gradients") or cls.output not in ("pixels", "map", "image"):
        raise MethodError(f"{where}: requires must be forward|gradients and output pixels|map|image")
    if (cls.family in ("attack", "synthesis")) != (cls.output == "image"):
        raise MethodError(f"{where}: attacks and synthesis methods (and only they) return images: subclass "
                          "onnxviz.Attack or onnxviz.Synthesis")
    return cls


def _load(entry: Entry) -> type[Method]:
    if entry.cls is None and entry.error is None:
        module, _, attr = entry.target.partition(":")
        try:
            obj = __import__(module, fromlist=[attr])
            entry.cls = validate(getattr(obj, attr), f"{entry.target} (from {entry.dist})")
        except Exception as exc:  # a broken plugin must not take the others down
            entry.error = f"{type(exc).__name__}: {exc}"
    if entry.error:
        raise MethodError(f"method {entry.name!r} from {entry.dist} is broken: {entry.error}")
    return entry.cls  # type: ignore[return-value]


def get(name: str) -> type[Method]:
    """The Method class registered as `name`."""
    entries = _entries()
    if name not in entries:
        raise MethodError(f"unknown method {name!r}.{suggest(name, entries)} Run `onnxviz methods` to list them.")
    entry = entries[name]
    if entry.conflict:
        raise MethodError(f"method {name!r} is claimed by two distributions: {entry.dist} and {entry.conflict}; "
                          "uninstall one of them")
    return _load(entry)


def register(cls: type[Method]) -> type[Method]:
    """Register a Method class at run time (notebooks, tests); usable as a decorator."""
    validate(cls, cls.__name__)
    if not cls.name:
        raise MethodError(f"{cls.__name__} has no `name`")
    _runtime[cls.name] = Entry(cls.name, f"{cls.__module__}:{cls.__qualname__}", "<runtime>", cls=cls)
    return cls


def unregister(name: str) -> None:
    _runtime.pop(name, None)


def all_entries() -> list[Entry]:
    """Every registered method, loaded where possible; broken ones carry their error."""
    entries = sorted(_entries().values(), key=lambda e: e.name)
    for entry in entries:
        try:
            _load(entry)
        except MethodError:
            pass
    return entries
