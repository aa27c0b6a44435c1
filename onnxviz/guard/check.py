"""The load check that runs in the worker process: read, parse, validate, inline, run the ONNX checker, open an
onnxruntime session and run one probe input. Whatever native code does to the process stays in the worker."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError

from ..errors import ModelError, first_line
from ..text import bytes_text
from . import sniff
from .limits import Limits
from .validate import inferred_budget, validate
from .walk import ensure_self_contained

PROTOBUF_LIMIT = 2**31 - 1


def read_file(path: Path, limits: Limits, name: str | None = None) -> bytes:
    """The model file's bytes, with one clear error for each way that can fail. Only regular files are read: a
    FIFO, a device (/dev/zero) or a socket is refused before a byte is read (opened non-blocking, checked on the
    open descriptor, so nothing can be swapped in between)."""
    shown = name or str(path)
    if path.is_dir():
        raise ModelError(f"{shown} is a folder, not a model file; pass the .onnx file inside it")
    if not path.exists():
        raise ModelError(f"model file not found: {shown}")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ModelError(f"cannot read the model file {shown}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ModelError(f"{shown} is not a regular file ({_kind(info.st_mode)}); onnxviz reads models from files")
        if info.st_size > min(limits.max_file_bytes, PROTOBUF_LIMIT):
            raise ModelError(f"{shown} is {bytes_text(info.st_size)}, over the {bytes_text(limits.max_file_bytes)} "
                             "limit for a model file (large models keep their weights as external data next to the "
                             ".onnx)")
        chunks, left = [], info.st_size  # no more than was checked, should the file grow meanwhile
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 26))):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise ModelError(f"cannot read the model file {shown}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    kinds = {stat.S_ISFIFO: "a named pipe", stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device",
             stat.S_ISSOCK: "a socket"}
    return next((what for test, what in kinds.items() if test(mode)), "not a regular file")


def parse(data: bytes, name: str) -> onnx.ModelProto:
    """A ModelProto with a graph, or ModelError saying what the bytes are instead."""
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
        looks_right = proto.HasField("graph") and bool(proto.graph.node) and bool(proto.opset_import)
    except (DecodeError, RuntimeError, ValueError):
        looks_right = False
    if not looks_right:
        hint = sniff.describe(data) or "truncated, damaged or another format"
        raise ModelError(f"{name} is not a readable ONNX model: {hint}")
    return proto


def check_model(source: str | bytes, name: str, limits: Limits) -> tuple[str, bytes | None]:
    """(sha256 of the bytes read, the model's bytes when external data was inlined else None); `source` is an
    absolute path or the model's bytes, `name` what errors call it."""
    path: Path | None = None
    if isinstance(source, str):
        path = Path(source)
        data = read_file(path, limits, name)
    else:
        data = source
    digest = hashlib.sha256(data).hexdigest()
    proto = parse(data, name)
    del data
    inlined = validate(proto, path.parent if path is not None else None, limits)
    inferred_budget(proto, limits)
    if proto.ByteSize() > PROTOBUF_LIMIT:
        raise ModelError(f"{name} is over 2 GiB once its external data is read; such models are not supported yet")
    ensure_self_contained(proto)
    serialized = proto.SerializeToString()
    try:
        onnx.checker.check_model(proto)
    except (onnx.checker.ValidationError, ValueError) as exc:
        raise ModelError(f"{name} fails the ONNX checker: {first_line(exc)}") from None
    _open_session(serialized, name)
    return digest, serialized if inlined else None


def _open_session(serialized: bytes, name: str) -> None:
    """Create an onnxruntime session and run one zero input: native failures happen here, not in the caller."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4
    options.intra_op_num_threads = options.inter_op_num_threads = 1  # thread pools cost more than tiny models
    try:
        session = ort.InferenceSession(serialized, options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelError(f"onnxruntime cannot open {name}: {first_line(exc)[:400]}") from None
    feeds = {}
    for value in session.get_inputs():
        dtype = _numpy_type(value.type)
        if dtype is None:
            return
        shape = [d if isinstance(d, int) and d > 0 else (1 if i == 0 else 224) for i, d in enumerate(value.shape)]
        feeds[value.name] = np.zeros(shape, dtype)
    try:
        session.run(None, feeds)
    except MemoryError:
        raise ModelError(f"{name} needs more memory than the loader's limit on a probe input") from None
    except Exception as exc:  # shape errors etc. are reported later, with the real input
        if "alloc" in str(exc).lower():
            raise ModelError(f"{name} needs more memory than the loader's limit on a probe input: "
                             f"{first_line(exc)[:300]}") from None


def _numpy_type(ort_type: str):
    names = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
             "tensor(uint8)": np.uint8, "tensor(int8)": np.int8, "tensor(int32)": np.int32,
             "tensor(int64)": np.int64, "tensor(bool)": np.bool_}
    return names.get(ort_type)
