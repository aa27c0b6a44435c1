"""open_model: every way onnxviz reads a model goes through the validator, in the worker process by default."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import onnx

from .. import graph_cache
from ..errors import ModelError
from .check import PROTOBUF_LIMIT, check_model, parse, read_file
from .limits import Limits
from .worker import WORKER

CHECK = "onnxviz.guard.check:check_model"


def open_model(source: str | os.PathLike | bytes | onnx.ModelProto, limits: Limits | None = None
               ) -> tuple[onnx.ModelProto, str]:
    """(validated ModelProto with external data inlined, display name). Bytes that passed the check before under
    the same limits (graph_cache.passed) are parsed without checking them again."""
    limits = limits or Limits()
    if isinstance(source, onnx.ModelProto):
        if source.ByteSize() > PROTOBUF_LIMIT:
            raise ModelError("a ModelProto over 2 GiB cannot be checked; save it with external data and load the path")
        data, name, request = source.SerializeToString(), "<ModelProto>", None
    elif isinstance(source, (bytes, bytearray)):
        data, name, request = bytes(source), "<bytes>", None
    else:
        path = Path(source)
        name, request = str(path), os.path.abspath(path)  # the worker's working folder may differ
        if not path.exists() and not path.is_symlink():
            raise ModelError(f"model file not found: {path}")
        data = read_file(path, limits, name)
    known = hashlib.sha256(data).hexdigest()
    if graph_cache.passed(known, _checked_under(limits)):
        return parse(data, name), name
    request = request if request is not None else data
    if limits.isolate and os.name == "posix":
        digest, inlined = WORKER.call(CHECK, (request, name, limits), timeout=limits.load_timeout,
                                      memory=limits.worker_memory_bytes, what=f"loading {name}")
    else:
        digest, inlined = check_model(request, name, limits)
    if inlined is not None:
        return parse(inlined, name), name
    if digest != known:
        raise ModelError(f"{name} changed while it was being loaded; try again")
    graph_cache.remember_passed(known, _checked_under(limits))
    return parse(data, name), name


def _checked_under(limits: Limits) -> str:
    """The limits the check's verdict depends on (not the worker's memory or time: a pass under those stands)."""
    return (f"file={limits.max_file_bytes} tensor={limits.max_tensor_bytes} depth={limits.max_subgraph_depth} "
            f"domains={','.join(sorted(limits.allowed_domains))}")
