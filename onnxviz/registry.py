"""Plugin discovery through entry points, one group per kind (`onnxviz.methods`, `onnxviz.attacks`,
`onnxviz.synthesis`); built-ins are registered the same way. A plugin's kind is its base class; names are unique
across kinds."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import entry_points

from .errors import MethodError, suggest
from .plugin import GROUPS, KINDS, Plugin

# keywords of the Explainer and the runners: an option with one of these names could never be set
RESERVED_OPTIONS = {"target", "layer", "batch_size", "seed", "progress", "preprocessing", "gradient", "image_sizes"}


@dataclass
class Entry:
    name: str
    target: str  # "module:Class"
    dist: str  # distribution that declared it
    group: str = GROUPS["method"]
    cls: type[Plugin] | None = None
    error: str | None = None  # why it could not be loaded
    conflict: str | None = None  # another distribution claiming the same name


_runtime: dict[str, Entry] = {}


@lru_cache(maxsize=1)
def _declared() -> dict[str, Entry]:
    found: dict[str, Entry] = {}
    for group in GROUPS.values():
        for ep in entry_points(group=group):
            dist = ep.dist.name if ep.dist else "?"
            if ep.name in found and (found[ep.name].dist, found[ep.name].target) != (dist, ep.value):
                found[ep.name].conflict = f"{dist} ({group})"
                continue
            found[ep.name] = Entry(ep.name, ep.value, dist, group)
    return found


def _entries() -> dict[str, Entry]:
    return {**_declared(), **_runtime}


def validate(cls: object, where: str) -> type[Plugin]:
    """The class, if it is a well-declared plugin of one of the kinds; else a MethodError saying what is wrong."""
    if not (isinstance(cls, type) and issubclass(cls, Plugin) and cls.kind in KINDS):
        raise MethodError(f"{where} is not a subclass of onnxviz.Method, onnxviz.Attack or onnxviz.Synthesis")
    taken = RESERVED_OPTIONS & {f.name for f in dataclasses.fields(cls.Options)}
    if taken:
        raise MethodError(f"{where}: option names {sorted(taken)} are taken by onnxviz.explain and the runners "
                          "themselves; rename them")
    problems = cls.problems()
    if problems:
        raise MethodError(f"{where}: {'; '.join(problems)}")
    return cls


def _load(entry: Entry) -> type[Plugin]:
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


def get(name: str) -> type[Plugin]:
    """The plugin class registered as `name`, of any kind."""
    entries = _entries()
    if not isinstance(name, str) or name not in entries:
        raise MethodError(f"unknown method {name!r}.{suggest(str(name), entries)} Run `onnxviz methods` to list them.")
    entry = entries[name]
    if entry.conflict:
        raise MethodError(f"method {name!r} is claimed by two distributions: {entry.dist} and {entry.conflict}; "
                          "uninstall one of them")
    return _load(entry)


def register(cls: type[Plugin]) -> type[Plugin]:
    """Register a plugin class at run time (notebooks, tests); usable as a decorator."""
    validate(cls, cls.__name__)
    if not cls.name:
        raise MethodError(f"{cls.__name__} has no `name`")
    _runtime[cls.name] = Entry(cls.name, f"{cls.__module__}:{cls.__qualname__}", "<runtime>", GROUPS[cls.kind],
                               cls=cls)
    return cls


def unregister(name: str) -> None:
    _runtime.pop(name, None)


def all_entries() -> list[Entry]:
    """Every registered plugin, loaded where possible; broken ones carry their error."""
    entries = sorted(_entries().values(), key=lambda e: e.name)
    for entry in entries:
        try:
            _load(entry)
        except MethodError:
            pass
    return entries


def names(kind: type[Plugin] = Plugin) -> list[str]:
    """Names of the working plugins of one kind (a base class), sorted."""
    return [e.name for e in all_entries() if e.cls is not None and issubclass(e.cls, kind)]


def kind_name(kind: type[Plugin]) -> str:
    """'an explanation method', 'an attack' or 'a synthesis method'."""
    return KINDS.get(kind.kind, "a plugin")
