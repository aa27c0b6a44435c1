"""Running onnx's own operator test cases (`onnx.backend.test.case.node`, function-expanded variants left
out) through onnx2torch."""

from __future__ import annotations

import warnings
from collections import defaultdict

import numpy as np
import onnx
from onnx import numpy_helper


def cases():
    from onnx.backend.test.case.node import collect_testcases

    return [c for c in collect_testcases(None) if c.kind == "node" and "_expanded" not in c.name]


def op_of(case) -> str:
    """The operator a (non-expanded) case tests: its first default-domain node."""
    return next((n.op_type for n in case.model.graph.node if n.domain in ("", "ai.onnx")), "?")


def _arrays(values) -> list[np.ndarray] | None:
    """numpy arrays (TensorProto values decoded), or None when some value is not a tensor."""
    out = []
    for v in values:
        if isinstance(v, onnx.TensorProto):
            try:
                v = numpy_helper.to_array(v)
            except Exception:
                return None
        if isinstance(v, (np.generic, int, float, bool)):
            v = np.asarray(v)
        if not isinstance(v, np.ndarray):
            return None
        out.append(v)
    return out


def freeze_inputs(model: onnx.ModelProto, values: list[np.ndarray]) -> onnx.ModelProto:
    """All graph inputs but the first become initializers: weights live in initializers in real exports,
    while onnx's test cases feed them (Conv W, Clip min/max, ...) as inputs."""
    frozen = onnx.ModelProto()
    frozen.CopyFrom(model)
    inputs = list(frozen.graph.input)
    del frozen.graph.input[1:]
    for info, value in zip(inputs[1:], values[1:], strict=False):
        frozen.graph.initializer.append(numpy_helper.from_array(np.asarray(value), info.name))
    return frozen


def first_output_only(case):
    """The case reduced to its node's first output, as inference graphs use LayerNormalization & co."""
    import copy

    trimmed = copy.copy(case)
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    del model.graph.output[1:]
    node = model.graph.node[0]
    del node.output[1:]
    trimmed.model = model
    trimmed.data_sets = [(inputs, outputs[:1]) for inputs, outputs in case.data_sets]
    return trimmed


def run_case(case, use_compat: bool) -> tuple[bool, str]:
    """(passed, why not): convert the case's model, run every data set, compare with its tolerances.
    A case whose conversion fails is tried again with its non-first inputs frozen (see freeze_inputs)."""
    ok, why = _run(case, use_compat, freeze=False)
    if not ok and why.startswith("convert") and len(case.model.graph.input) > 1:
        ok, why = _run(case, use_compat, freeze=True)
    return ok, why


def _run(case, use_compat: bool, freeze: bool) -> tuple[bool, str]:
    import torch
    from onnx2torch import convert

    if use_compat:
        from onnxviz.backends import compat

        compat.register()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for inputs, expected in case.data_sets:
            inputs, expected = _arrays(inputs), _arrays(expected)
            if inputs is None or expected is None:
                return False, "non-tensor inputs"
            model = freeze_inputs(case.model, inputs) if freeze else case.model
            inputs = inputs[:1] if freeze else inputs
            try:
                module = convert(compat.fix_graph(model) if use_compat else model).eval()
            except Exception as exc:
                return False, f"convert: {type(exc).__name__}"
            try:
                with torch.no_grad():
                    got = module(*[torch.from_numpy(np.array(a)) for a in inputs])
            except Exception as exc:
                return False, f"run: {type(exc).__name__}"
            got = list(got) if isinstance(got, (tuple, list)) else [got]
            if len(got) != len(expected):
                return False, "output count"
            for g, e in zip(got, expected, strict=True):
                g = g.numpy() if hasattr(g, "numpy") else np.asarray(g)
                if g.shape != e.shape or not np.allclose(g.astype(np.float64) if g.dtype != bool else g,
                                                         e.astype(np.float64) if e.dtype != bool else e,
                                                         rtol=max(case.rtol, 1e-4), atol=max(case.atol, 1e-5),
                                                         equal_nan=True):
                    return False, "wrong values"
    return True, ""


def coverage(use_compat: bool, ops: set[str] | None = None) -> dict[str, list[tuple[str, bool, str]]]:
    """{op: [(case name, passed, reason)]} over every node case (or those of `ops`)."""
    by_op: dict[str, list[tuple[str, bool, str]]] = defaultdict(list)
    for case in cases():
        op = op_of(case)
        if ops is None or op in ops:
            ok, why = run_case(case, use_compat)
            by_op[op].append((case.name, ok, why))
    return dict(by_op)
