"""open_model: every way onnxviz reads a model goes through the validator, in the worker process by default."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import onnx

from ..errors import ModelError
from .check import PROTOBUF_LIMIT, check_model, parse, read_file
from .limits import Limits
from .worker import WORKER

CHECK = "onnxviz.guard.check:check_model"


def open_model(source: str | os.PathLike | bytes | onnx.ModelProto, limits: Limits | None = None
               ) -> tuple[onnx.ModelProto, str]:
    """(validated ModelProto with external data inlined, display name)."""
    limits = limits or Limits()
    if isinstance(source, onnx.ModelProto):
        if source.ByteSize() > PROTOBUF_LIMIT:
            raise ModelError("a ModelProto over 2 GiB cannot be checked; save it with external data and load the path")
        data, name, request = source.SerializeToString(), "<ModelProto>", None
    elif isinstance(source, (bytes, bytearray)):
        data, name, request = bytes(source), "<bytes>", None
    else:
        path = Path(source)
        data, name, request = None, str(path), os.path.abspath(path)  # the worker's working folder may differ
        if not path.exists() and not path.is_symlink():
            raise ModelError(f"model file not found: {path}")
    request = request if request is not None else data
    if limits.isolate and os.name == "posix":
        digest, inlined = WORKER.call(CHECK, (request, name, limits), timeout=limits.load_timeout,
                                      memory=limits.worker_memory_bytes, what=f"loading {name}")
    else:
        digest, inlined = check_model(request, name, limits)
    if inlined is not None:
        return parse(inlined, name), name
    data = data if data is not None else read_file(Path(request), limits, name)
    if hashlib.sha256(data).hexdigest() != digest:
        raise ModelError(f"{name} changed while it was being loaded; try again")
    return parse(data, name), name
