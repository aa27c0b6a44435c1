"""External tensor data, read by us and inlined: only regular files inside the model's folder, reached without
symbolic links, with one hard link, and with the offset and length inside the file. Nothing is read before
every check has passed; onnxruntime and numpy_helper never resolve a path themselves."""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

import numpy as np
import onnx

from ..errors import ModelError
from ..text import bytes_text
from .limits import Limits


def nbytes(elem_type: int, dims) -> int | None:
    """Bytes a tensor of this ONNX element type and shape takes; None for strings and unknown types."""
    if elem_type in (onnx.TensorProto.STRING, onnx.TensorProto.UNDEFINED):
        return None
    try:
        itemsize = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).itemsize
    except (KeyError, TypeError, ValueError):
        return None
    return int(np.prod([int(d) for d in dims], dtype=object)) * itemsize


def declared_bytes(tensor: onnx.TensorProto) -> int | None:
    """Bytes the tensor's dims and type ask for; None for strings and unknown types."""
    return nbytes(tensor.data_type, tensor.dims)


def _location(tensor: onnx.TensorProto, folder: Path | None, where: str) -> tuple[Path, int, int | None]:
    info = {e.key: e.value for e in tensor.external_data}
    location = info.get("location", "")
    if folder is None:
        raise ModelError(f"{where} keeps its data in an external file ({location!r}) but the model was given as "
                         "bytes or a ModelProto; load it from its path so the data is read from the model's folder")
    rel = PurePosixPath(location.replace("\\", "/"))
    if not location or rel.is_absolute() or ".." in rel.parts or (len(location) > 1 and location[1] == ":"):
        raise ModelError(f"{where}: external data path {location!r} leaves the model's folder; onnxviz reads external "
                         f"data only from files inside {folder}")
    try:
        offset = int(info.get("offset") or 0)
        length = int(info["length"]) if info.get("length") else None
    except ValueError:
        raise ModelError(f"{where}: external data offset/length are not integers ({info})") from None
    path = folder
    for part in rel.parts:
        path = path / part
        if path.is_symlink():
            raise ModelError(f"{where}: external data path {location!r} goes through a symbolic link ({path}); "
                             "copy the data file into the model's folder instead")
    return path, offset, length


def inline(tensor: onnx.TensorProto, folder: Path | None, where: str, limits: Limits, budget: list[int]) -> None:
    """Replace the tensor's external reference by its bytes; `budget` holds the bytes still allowed in total."""
    path, offset, length = _location(tensor, folder, where)
    expected = declared_bytes(tensor)
    if expected is None:
        raise ModelError(f"{where}: external data of type {tensor.data_type} (strings?) is not supported")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise ModelError(f"{where}: its external data file {path.name!r} is missing from {folder}") from None
    except OSError as exc:
        raise ModelError(f"{where}: cannot open its external data file {path.name!r}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ModelError(f"{where}: external data {path.name!r} is not a regular file (a pipe or a device?); "
                             "onnxviz reads external data only from regular files")
        if info.st_nlink > 1:
            raise ModelError(f"{where}: external data {path.name!r} has {info.st_nlink} hard links (it may be a file "
                             "from outside the model's folder); copy it instead of linking it")
        length = info.st_size - offset if length is None else length
        if offset < 0 or length < 0 or offset + length > info.st_size:
            raise ModelError(f"{where}: external data offset {offset} + length {length} lies outside "
                             f"{path.name!r} ({info.st_size} bytes)")
        if length != expected:
            raise ModelError(f"{where}: external data holds {length} bytes where its shape {list(tensor.dims)} "
                             f"needs {expected}")
        if expected > limits.max_tensor_bytes or expected > budget[0]:
            raise ModelError(f"{where}: external data of {bytes_text(expected)} exceeds the budget "
                             f"({bytes_text(min(limits.max_tensor_bytes, budget[0]))} left); raise --max-tensor-size "
                             "if the model really is that large")
        budget[0] -= expected
        data = bytearray()
        while len(data) < length:
            chunk = os.pread(fd, min(length - len(data), 1 << 26), offset + len(data))
            if not chunk:
                raise ModelError(f"{where}: external data {path.name!r} ended early")
            data += chunk
    finally:
        os.close(fd)
    tensor.raw_data = bytes(data)
    del tensor.external_data[:]
    tensor.data_location = onnx.TensorProto.DEFAULT
