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
    "test_cast_*FLOAT8*": "float8 casts: torch's float8 types are storage only, onnx2torch cannot express them",
    "test_cast_*FLOAT4E2M1*": "float4 casts: no torch dtype",
    "test_cast_*INT4*": "4-bit integer casts: no torch dtype",
    "test_cast_*INT2*": "2-bit integer casts: no torch dtype",
    "test_cast_*BFLOAT16*": "bfloat16 casts: onnx2torch rounds bfloat16 differently from onnx's reference",
    "test_cast_e8m0_*": "float8 e8m0 casts: no torch dtype",
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
    # Resize: the modes onnx2torch maps inexactly, named case by case (a new resize failure is a regression)
    "test_resize_downsample_scales_cubic_A_n0p5_exclude_outside": "cubic A=-0.5 / exclude_outside: torch uses -0.75",
    "test_resize_upsample_scales_cubic_A_n0p5_exclude_outside": "cubic A=-0.5 / exclude_outside: torch uses -0.75",
    "test_resize_downsample_scales_cubic_align_corners": "cubic with align_corners on a downsample",
    "test_resize_upsample_scales_cubic_asymmetric": "cubic with the asymmetric coordinate mode",
    "test_resize_downsample_scales_cubic_antialias": "antialias: torch's antialias differs from onnx's",
    "test_resize_downsample_scales_linear_antialias": "antialias: torch's antialias differs from onnx's",
    "test_resize_downsample_sizes_cubic_antialias": "antialias: torch's antialias differs from onnx's",
    "test_resize_downsample_sizes_linear_antialias": "antialias: torch's antialias differs from onnx's",
    "test_resize_downsample_scales_linear_align_corners": "linear align_corners on a downsample by scales",
    "test_resize_downsample_scales_linear_half_pixel_symmetric": "the half_pixel_symmetric coordinate mode",
    "test_resize_upsample_scales_linear_half_pixel_symmetric": "the half_pixel_symmetric coordinate mode",
    "test_resize_downsample_sizes_linear_pytorch_half_pixel": "pytorch_half_pixel on a size-1 axis",
    "test_resize_downsample_scales_nearest": "nearest rounding of a fractional downsample",
    "test_resize_downsample_sizes_nearest": "nearest rounding of a fractional downsample",
    "test_resize_upsample_sizes_nearest_ceil_half_pixel": "nearest_mode ceil",
    "test_resize_upsample_sizes_nearest_floor_align_corners": "nearest_mode floor with align_corners",
    "test_resize_upsample_sizes_nearest_round_prefer_ceil_asymmetric": "nearest_mode round_prefer_ceil",
    "test_resize_downsample_sizes_nearest_not_larger": "keep_aspect_ratio_policy not_larger",
    "test_resize_downsample_sizes_nearest_not_smaller": "keep_aspect_ratio_policy not_smaller",
    "test_resize_upsample_sizes_nearest_not_larger": "keep_aspect_ratio_policy not_larger",
    "test_resize_upsample_sizes_nearest_not_smaller": "keep_aspect_ratio_policy not_smaller",
    "test_resize_upsample_scales_nearest_axes_2_3": "the axes input (Resize-18)",
    "test_resize_upsample_scales_nearest_axes_3_2": "the axes input (Resize-18)",
    "test_resize_upsample_sizes_nearest_axes_2_3": "the axes input (Resize-18)",
    "test_resize_upsample_sizes_nearest_axes_3_2": "the axes input (Resize-18)",
    "test_resize_tf_crop_and_resize": "tf_crop_and_resize (a crop, not a resize)",
    "test_resize_tf_crop_and_resize_axes_2_3": "tf_crop_and_resize (a crop, not a resize)",
    "test_resize_tf_crop_and_resize_axes_3_2": "tf_crop_and_resize (a crop, not a resize)",
    "test_resize_tf_crop_and_resize_extrapolation_value": "tf_crop_and_resize (a crop, not a resize)",
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


def test_every_known_gap_is_still_a_gap(results):
    """A gap onnx2torch has closed must leave the list, so the list never hides a case that works."""
    failing = [name for rows in results.values() for name, ok, _ in rows if not ok]
    stale = [pattern for pattern in KNOWN_GAPS if not any(fnmatch(name, pattern) for name in failing)]
    assert not stale, stale


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
