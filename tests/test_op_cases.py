"""onnx's own operator test cases through the torch backend, for every op torchvision CNN exports use.

Each failing case must be a known, named gap: a feature the exports of CNNs do not use (training mode, extra
outputs, dtypes torch lacks, resize modes onnx2torch maps inexactly). A new failure is a regression.
"""

from __future__ import annotations

from fnmatch import fnmatch

import pytest

from tests.op_cases import cases, coverage, first_output_only, op_of, run_case
from tests.test_conversion_coverage import CNN_OPS

pytest.importorskip("onnx2torch")

KNOWN_GAPS = {
    "test_*_uint16": "torch has no uint16/32/64 arithmetic",
    "test_*_uint32": "torch has no uint16/32/64 arithmetic",
    "test_*_uint64": "torch has no uint16/32/64 arithmetic",
    "test_cast_*": "float8 / int4 / int2 / float4 / bfloat16 casts onnx2torch cannot express",
    "test_batchnorm_*_training_mode": "training mode (running statistics update)",
    "test_training_dropout*": "training-mode dropout",
    "test_dropout_default_mask*": "the dropout mask output",
    "test_layer_normalization_*": "the optional Mean / InvStdDev outputs (exports only use Y)",
    "test_maxpool_with_argmax_*": "the Indices output",
    "test_maxpool_2d_pads": "pads larger than half the kernel, which torch refuses",
    "test_averagepool_2d_pads*": "pads larger than half the kernel, which torch refuses",
    "test_averagepool_2d_same_*": "asymmetric SAME pads excluded from the average (torch pads would be counted)",
    "test_averagepool_*dilations*": "torch has no dilated average pooling",
    "test_flatten_axis0": "Flatten(axis=0), a bug in onnx2torch",
    "test_flatten_negative_axis4": "Flatten(axis=-4), a bug in onnx2torch",
    "test_wrap_pad": "Pad mode wrap",
    "test_constant_pad_*axes": "Pad-18 axes input",
    "test_resize_*": "resize modes onnx2torch maps inexactly (nearest rounding, cubic, antialias, axes, crop)",
}


@pytest.fixture(scope="module")
def results():
    return coverage(True, CNN_OPS)


def test_every_cnn_op_has_passing_cases(results):
    first_output_ops = {"LayerNormalization"}  # every onnx case asks for its optional outputs too
    missing = sorted(op for op in CNN_OPS - first_output_ops if not any(ok for _, ok, _ in results.get(op, [])))
    assert not missing, f"no passing onnx test case for {missing}"


def test_every_failure_is_a_known_gap(results):
    unexplained = [(op, name, why) for op, rows in results.items() for name, ok, why in rows
                   if not ok and not any(fnmatch(name, pattern) for pattern in KNOWN_GAPS)]
    assert not unexplained, unexplained


def test_layer_normalization_cases_pass_on_their_y_output():
    layer_norm = [first_output_only(c) for c in cases() if op_of(c) == "LayerNormalization"]
    assert len(layer_norm) >= 10
    failed = [(c.name, why) for c in layer_norm for ok, why in [run_case(c, True)] if not ok]
    assert not failed, failed


def test_the_cases_cnns_rely_on_pass(results):
    for name in ("test_basic_conv_with_padding", "test_conv_with_autopad_same", "test_maxpool_2d_same_upper",
                 "test_globalaveragepool", "test_gemm_default_matrix_bias", "test_reduce_mean_keepdims_example",
                 "test_gelu_default_1", "test_resize_upsample_scales_linear", "test_clip_default_max",
                 "test_reshape_allowzero_reordered"):
        row = next(r for rows in results.values() for r in rows if r[0] == name)
        assert row[1], row
