"""onnxruntime backend: cached sessions with explicit providers, intermediate tensors as extra outputs,
and cached subgraphs "from layer L to the outputs"."""

from __future__ import annotations

import functools
import os
import warnings
import weakref
from functools import lru_cache

import numpy as np
import onnx
import onnxruntime as ort

from ..errors import ModelError, brief, first_line
from ..guard.limits import Limits
from ..guard.run import run_onnxruntime
from ..guard.walk import ensure_self_contained
from .graph import bypasses, cut_from, with_outputs

ort.set_default_logger_severity(4)  # its own log lines (errors too) would break the one-line error rule


def providers_for(device: str) -> list[str]:
    """Explicit providers: CUDA first when asked for and present, else CPU with a one-line notice."""
    if device == "cuda":
        if "CUDAExecutionProvider" in ort.get_available_providers():
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        warnings.warn(
            "onnxviz: CUDA asked for but onnxruntime has no CUDA provider (install onnxruntime-gpu); using CPU.",
            stacklevel=2,
        )
    return ["CPUExecutionProvider"]


def _run(session: ort.InferenceSession, outputs: tuple[str, ...], feed: dict, limits: Limits) -> list[np.ndarray]:
    """One pass, within the run limits (memory, time, signals: see guard.run)."""
    shapes = ", ".join(f"{k} {list(v.shape)}" for k, v in feed.items())
    try:
        return run_onnxruntime(lambda options: session.run(list(outputs), feed, options), limits,
                               f"running the model on {shapes}")
    except (ModelError, KeyboardInterrupt):
        raise
    except Exception as exc:  # onnxruntime's Fail, InvalidArgument, RuntimeException... are unrelated types
        raise ModelError(f"onnxruntime failed to run the model on {shapes}: {brief(exc)}") from None


_THREADS = {"intra_op": 0}  # 0: onnxruntime's default (all cores)
_SESSIONS: weakref.WeakSet = weakref.WeakSet()  # every session this process created
_INHERITED: list = []  # in a forked child: its parent's sessions, kept alive until the child exits


def _keep_inherited_sessions() -> None:
    """In a forked child, the parent's sessions must never be destroyed: a session's destructor joins thread-pool
    threads that did not survive the fork (a segfault when the child's garbage collector frees one)."""
    _INHERITED.extend(_SESSIONS)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_keep_inherited_sessions)


def get_threads() -> int:
    return _THREADS["intra_op"]


def set_threads(n: int) -> None:
    """Threads per onnxruntime session created from now on (batch workers share the cores)."""
    _THREADS["intra_op"] = max(0, int(n))


def distinct_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of the first of each distinct row, which distinct row each row is): rows compared by their bytes."""
    seen: dict[bytes, int] = {}
    first: list[int] = []
    rows: list[int] = []
    for i, row in enumerate(np.ascontiguousarray(x)):
        key = row.tobytes()
        if key not in seen:
            seen[key] = len(first)
            first.append(i)
        rows.append(seen[key])
    return np.asarray(first, dtype=np.int64), np.asarray(rows, dtype=np.int64)


def as_input(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A batch in the graph's input dtype; an integer input gets the nearest integers within its range (onnxviz keeps
    such batches as floats, so perturbations and paths stay continuous: no wrap-around, no truncation)."""
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer) and not np.issubdtype(np.asarray(x).dtype, np.integer):
        info = np.iinfo(dtype)
        x = np.clip(np.rint(x), info.min, info.max)
    return np.ascontiguousarray(x, dtype=dtype)


class OrtBackend:
    """Forward passes on onnxruntime. Sessions are cached per requested output set."""

    def __init__(self, proto: onnx.ModelProto, input_name: str, input_dtype: np.dtype, device: str = "cpu",
                 limits: Limits | None = None):
        ensure_self_contained(proto)  # onnxruntime must never resolve a file path itself
        self.limits = limits or Limits()
        self.proto = proto
        self.input_name = input_name
        self.input_dtype = input_dtype
        self.providers = providers_for(device)
        self.session = lru_cache(maxsize=16)(self._session)
        self.subgraph_session = lru_cache(maxsize=8)(self._subgraph_session)
        self.bypasses = lru_cache(maxsize=8)(functools.partial(bypasses, proto))

    def _create(self, proto: onnx.ModelProto) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.log_severity_level = 4  # errors come back as exceptions, said in one line by _run
        options.intra_op_num_threads = _THREADS["intra_op"]
        # idle threads sleep instead of spinning: a spinning pool kept both cores busy after each run and slowed the
        # torch pass that follows it 2.5x (saliency on resnet18: 150 -> 93 ms); forward-only runs lose about 3 %
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            session = ort.InferenceSession(proto.SerializeToString(), options, providers=self.providers)
        except Exception as exc:  # onnxruntime raises several unrelated types
            raise ModelError(f"onnxruntime cannot run this model: {first_line(exc)}") from exc
        _SESSIONS.add(session)
        return session

    def _session(self, outputs: tuple[str, ...]) -> ort.InferenceSession:
        return self._create(with_outputs(self.proto, outputs))

    def _subgraph_session(self, layer: str | tuple[str, ...], outputs: tuple[str, ...]) -> ort.InferenceSession:
        return self._create(cut_from(self.proto, layer, outputs))

    def run(self, x: np.ndarray, outputs: tuple[str, ...]) -> list[np.ndarray]:
        """One forward pass of one chunk; returns the requested tensors."""
        feed = {self.input_name: as_input(x, self.input_dtype)}
        return _run(self.session(outputs), outputs, feed, self.limits)

    def run_from(self, layer: str | tuple[str, ...], acts: np.ndarray | tuple[np.ndarray, ...], x: np.ndarray,
                 outputs: tuple[str, ...]) -> list[np.ndarray]:
        """Run the rest of the network from `layer` fed with `acts` (several layers: one array each), and `x`
        where a branch bypasses them."""
        layers, arrays = ((layer,), (acts,)) if isinstance(layer, str) else (tuple(layer), tuple(acts))
        fed = dict(zip(layers, arrays, strict=True))
        around = self.bypasses(layers, outputs)
        if around:
            first, rows = distinct_rows(x)
            if len(first) < len(x):  # copies of a few images (ablations, masks of one image): run their start once
                values = self.run(x[first], around)
                if all(v.dtype.kind == "f" and v.ndim >= 2 and len(v) == len(first) for v in values):
                    fed.update((name, v[rows]) for name, v in zip(around, values, strict=True))
                    layers = (*layers, *around)
        session = self.subgraph_session(layers, outputs)
        feed = {}
        for inp in session.get_inputs():
            feed[inp.name] = fed[inp.name] if inp.name in fed else as_input(x, self.input_dtype)
        return _run(session, outputs, feed, self.limits)
