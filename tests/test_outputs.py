"""Models with several outputs: the output to explain is chosen by name, from Python and from the CLI."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

import onnxviz
from onnxviz.cli import cli

RNG = np.random.default_rng(11)
WA = RNG.standard_normal((3, 16)).astype(np.float32)
WB = RNG.standard_normal((5, 16)).astype(np.float32)


def _two_heads() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 4, 4])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", k]) for n, k in (("a", 3), ("b", 5))]
    nodes = [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Gemm", ["f", "wa"], ["a"], transB=1),
             helper.make_node("Gemm", ["f", "wb"], ["b"], transB=1)]
    inits = [numpy_helper.from_array(WA, "wa"), numpy_helper.from_array(WB, "wb")]
    return helper.make_model(helper.make_graph(nodes, "two", [x], outs, inits),
                             opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_an_output_is_chosen_by_name(tmp_path):
    model = onnxviz.load(_two_heads())
    x = RNG.standard_normal((2, 1, 4, 4)).astype(np.float32)
    ex = onnxviz.explain(model, x, "saliency", target=onnxviz.Target(4, output="b"), abs=False)
    np.testing.assert_allclose(ex.attributions, np.broadcast_to(WB[4].reshape(1, 1, 4, 4), x.shape), atol=1e-6)
    with_a = onnxviz.explain(model, x, "saliency", target=onnxviz.Target(2, output="a"), abs=False)
    np.testing.assert_allclose(with_a.attributions[0, 0], WA[2].reshape(4, 4), atol=1e-6)
    with pytest.raises(onnxviz.TargetError, match=r"3 classes \(0\.\.2\)"):
        onnxviz.explain(model, x, "saliency", target=onnxviz.Target(4, output="a"))


def test_several_outputs_and_none_chosen_is_an_error_listing_them():
    model = onnxviz.load(_two_heads())
    x = RNG.standard_normal((1, 1, 4, 4)).astype(np.float32)
    with pytest.raises(onnxviz.TargetError, match=r"2 outputs \(a \['N', 3\], b \['N', 5\]\); choose .* --output"):
        onnxviz.explain(model, x, "saliency", target=2)


def test_cli_output_option(tmp_path):
    path = tmp_path / "two.onnx"
    onnx.save(_two_heads(), str(path))
    image = tmp_path / "img.png"
    import cv2

    cv2.imwrite(str(image), (RNG.random((4, 4)) * 255).astype(np.uint8))
    result = CliRunner().invoke(cli, ["explain", str(path), str(image), "-m", "saliency", "--output", "b",
                                      "--target", "4", "--layout", "NCHW", "--out", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 0, result.output
    ex = onnxviz.Explanation.load(tmp_path / "out" / "saliency.npz")
    assert ex.target == "b:4" and ex.targets.tolist() == [4]
    bad = CliRunner().invoke(cli, ["explain", str(path), str(image), "--output", "c", "-m", "saliency",
                                   "--out", str(tmp_path / "o2")])
    assert bad.exit_code == 1 and "outputs are: a, b" in bad.stderr
