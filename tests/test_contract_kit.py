"""The contract kit catches the plugins that look fine and explain nothing (issue 18 item 6): a constant map, an
all-zero map, a map that ignores the weights, and a method that reads the wrong axis on NHWC inputs all fail
`check_method`; the built-in methods pass it (tests/test_registry.py runs it on every one)."""

from __future__ import annotations

import numpy as np
import pytest

import onnxviz
from onnxviz import registry
from onnxviz.testing import check_method, transposed_copy


@pytest.fixture
def registered():
    names = []

    def add(cls):
        onnxviz.register(cls)
        names.append(cls.name)
        return cls

    yield add
    for name in names:
        registry.unregister(name)


class Constant(onnxviz.Method):
    name = "kit_constant"

    def explain(self, ctx, x, opts):
        return np.ones(x.shape, np.float32)


class Zero(onnxviz.Method):
    name = "kit_zero"

    def explain(self, ctx, x, opts):
        return np.zeros(x.shape, np.float32)


class InputOnly(onnxviz.Method):
    """Depends on the target (a scale per class) but never runs the model."""

    name = "kit_input_only"

    def explain(self, ctx, x, opts):
        return x * (1 + ctx.targets[:, None, None, None]).astype(np.float32)


class WrongAxis(onnxviz.Method):
    """Occlusion of whole rows, written for NCHW only: on an NHWC batch axis 2 is the width, so it occludes columns."""

    name = "kit_wrong_axis"
    requires = "forward"

    def explain(self, ctx, x, opts):
        clean = ctx.explained_scores(x)
        out = np.zeros(x.shape, np.float32)
        for i in range(len(x)):
            rows = x.shape[2]  # H in NCHW only
            copies = np.repeat(x[i : i + 1], rows, axis=0)
            for r in range(rows):
                copies[r][:, r] = 0
            drops = clean[i] - ctx.for_samples([i] * rows).score(copies)
            for r, drop in enumerate(drops):
                out[i][:, r] = drop
        return out


@pytest.mark.parametrize(("cls", "message"), [(Constant, "do not change when the target changes"),
                                              (Zero, "do not change when the target changes"),
                                              (InputOnly, "do not change when the model's weights are randomized"),
                                              (WrongAxis, "an axis is read in the wrong layout")])
def test_a_method_that_explains_nothing_fails_the_kit(registered, cls, message):
    registered(cls)
    with pytest.raises(AssertionError, match=message):
        check_method(cls.name)


def test_the_transposed_copy_is_the_same_network(digits_model, digits_batch):
    copy = onnxviz.load(transposed_copy(digits_model), layout="NHWC")
    assert copy.input.layout == "NHWC" and copy.input.shape[1:] == (32, 32, 1)
    moved = np.ascontiguousarray(digits_batch.transpose(0, 2, 3, 1))
    np.testing.assert_allclose(copy.run(moved, (copy.outputs[0],))[0],
                               digits_model.run(digits_batch, (digits_model.outputs[0],))[0], rtol=1e-5, atol=1e-5)


def test_the_kit_reports_what_it_checked():
    report = check_method("gradcam")
    assert report["checks"] == ["shape", "dtype", "finite", "deterministic", "batch = samples", "follows the target",
                                "follows the weights", "same map in NHWC"]
