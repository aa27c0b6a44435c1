"""What a second load of the same model file can skip, kept on disk: the guard's check (the file's SHA-256 is
marked as passed under given limits) and onnxslim with its comparison (the normalized graph).

Keyed by the model's bytes and the versions of what made the graph (onnxviz, onnxslim, onnx, onnxruntime). Entries
are ONNX protobuf, parsed and never unpickled, written atomically into a directory only the user can write
(platformdirs' user cache directory), and read back only when the directory and file are the user's own and the
file's SHA-256 matches its index entry. `ONNXVIZ_CACHE_DIR` moves the cache; `ONNXVIZ_CACHE=off` turns it off.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from importlib import metadata
from pathlib import Path

import onnx

LIMIT_BYTES = 2 << 30  # the oldest entries go once the cache holds more
LARGEST_BYTES = 1 << 30  # larger graphs are not cached (protobuf's own limit is 2 GiB)
MARKERS = 4096  # files marked as passed the check; the oldest go beyond this
_MADE_BY = ("onnxviz", "onnxslim", "onnx", "onnxruntime")


def directory() -> Path | None:
    """Where entries live; None when the cache is turned off."""
    if os.environ.get("ONNXVIZ_CACHE", "").lower() in ("0", "off", "false", "no"):
        return None
    given = os.environ.get("ONNXVIZ_CACHE_DIR")
    if given:
        return Path(given)
    import platformdirs

    return Path(platformdirs.user_cache_dir("onnxviz")) / "graphs"


def key(model_key: str) -> str:
    """The entry name: the model (its SHA-256 and input) and the versions of everything that shaped its graph."""
    versions = []
    for name in _MADE_BY:
        try:
            versions.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name}=none")
    return hashlib.sha256(f"{model_key}|{'|'.join(versions)}".encode()).hexdigest()[:32]


def read(model_key: str) -> tuple[onnx.ModelProto, str] | None:
    """(graph, how it was normalized) for a model seen before, else None. Anything doubtful is a miss."""
    where = directory()
    if where is None or not _own(where):
        return None
    name = key(model_key)
    graph, index = where / f"{name}.onnx", where / f"{name}.json"
    try:
        if not (_own(graph) and _own(index)):
            return None
        entry = json.loads(index.read_text())
        data = graph.read_bytes()
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            return None
        proto = onnx.load_from_string(data)
        os.utime(graph)  # recently used: pruned last
        return proto, str(entry["normalization"])
    except Exception:  # unreadable, a damaged index, a protobuf DecodeError: a miss like any other
        return None


def write(model_key: str, proto: onnx.ModelProto, normalization: str) -> None:
    """Keep the graph for next time. Failing to (a read-only disk, a huge graph) costs only the speed-up."""
    where = directory()
    if where is None or proto.ByteSize() > LARGEST_BYTES:
        return
    try:
        where.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not _own(where):
            return
        name = key(model_key)
        data = proto.SerializeToString()
        _atomic_write(where / f"{name}.onnx", data)
        entry = {"sha256": hashlib.sha256(data).hexdigest(), "normalization": normalization}
        _atomic_write(where / f"{name}.json", json.dumps(entry).encode())
        _prune(where)
    except OSError:
        return


def passed(digest: str, limits: str) -> bool:
    """Whether the model file whose SHA-256 is `digest` passed the guard's check under `limits` before, with these
    versions of onnxviz, onnx and onnxruntime. A marker the user does not own alone is never believed."""
    where = directory()
    if where is None or not _own(where):
        return False
    return _own(_marker(where, digest, limits))


def remember_passed(digest: str, limits: str) -> None:
    """Mark the file as checked (an empty file named by the key). Failing to costs only the speed-up."""
    where = directory()
    if where is None:
        return
    try:
        where.mkdir(parents=True, exist_ok=True, mode=0o700)
        if _own(where):
            _atomic_write(_marker(where, digest, limits), b"")
            markers = sorted(where.glob("*.passed"), key=lambda p: p.stat().st_mtime)
            for old in markers[:max(0, len(markers) - MARKERS)]:
                old.unlink(missing_ok=True)
    except OSError:
        return


def _marker(where: Path, digest: str, limits: str) -> Path:
    return where / f"{key(f'passed:{digest}:{limits}')}.passed"


def _own(path: Path) -> bool:
    """The user's own and writable by nobody else (on POSIX): a file others could change is never trusted."""
    try:
        info = path.stat()
    except OSError:
        return False
    if os.name != "posix":
        return True
    return info.st_uid == os.getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".partial-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _prune(where: Path) -> None:
    """Oldest graphs first (by last use) until the cache fits in LIMIT_BYTES."""
    graphs = sorted(where.glob("*.onnx"), key=lambda p: p.stat().st_mtime)
    total = sum(p.stat().st_size for p in graphs)
    for graph in graphs:
        if total <= LIMIT_BYTES:
            break
        total -= graph.stat().st_size
        graph.unlink(missing_ok=True)
        graph.with_suffix(".json").unlink(missing_ok=True)
