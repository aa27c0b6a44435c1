"""Outputs that are not class scores are not explained as if they were (issue 17 item 3): a raw detector head
(either YOLO layout), boxes and an L2-normalized embedding refuse class targets with what they are and what to do;
classifiers, segmentation maps and sequences keep them; a one-channel map's `0@predicted` is its pixels above the
threshold, not every pixel."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

import onnxviz
from onnxviz.cli import cli
from onnxviz.targets.outputs import output_kind


def _net(tail: list, out_shape: list, extra: dict | None = None, out: str = "y") -> onnx.ModelProto:
    """(1, 3, 16, 16) -> Conv to 7 channels -> `tail` nodes -> output `out`."""
    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])
    y = helper.make_tensor_value_info(out, TensorProto.FLOAT, out_shape)
    nodes = [helper.make_node("Conv", ["x", "W"], ["conv"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]), *tail]
    inits = [numpy_helper.from_array(rng.standard_normal((7, 3, 3, 3)).astype(np.float32), "W")]
    inits += [numpy_helper.from_array(v, k) for k, v in (extra or {}).items()]
    model = helper.make_model(helper.make_graph(nodes, "net", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


YOLO8 = _net([helper.make_node("Reshape", ["conv", "s"], ["y"])], [1, 7, 256],
             {"s": np.array([1, 7, 256], np.int64)})
YOLO5 = _net([helper.make_node("Reshape", ["conv", "s"], ["r"]), helper.make_node("Transpose", ["r"], ["y"],
                                                                                   perm=[0, 2, 1])],
             [1, 256, 7], {"s": np.array([1, 7, 256], np.int64)})
EMBED = _net([helper.make_node("GlobalAveragePool", ["conv"], ["p"]), helper.make_node("Flatten", ["p"], ["f"]),
              helper.make_node("LpNormalization", ["f"], ["y"], p=2, axis=1)], [1, 7])
DBNET = _net([helper.make_node("ReduceMean", ["conv"], ["m"], axes=[1], keepdims=1),
              helper.make_node("Sigmoid", ["m"], ["y"])], [1, 1, 16, 16])


@pytest.mark.parametrize(("model", "kind", "words"), [
    (YOLO8, "detector_head", "YOLOv8"), (YOLO5, "detector_head", "YOLOv5"), (EMBED, "embedding", "L2-normalizes")])
def test_class_targets_are_refused_on_outputs_without_classes(model, kind, words, tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    loaded = onnxviz.load(path)
    loaded.use_preprocessing("unit")
    x = np.random.default_rng(1).random((1, 3, 16, 16)).astype(np.float32)
    assert output_kind(loaded.proto, "y", loaded.run(x, ("y",))[0].shape).kind == kind
    with pytest.raises(onnxviz.TargetError, match=f"looks like a {kind.replace('_', ' ')}.*{words}"):
        onnxviz.explain(loaded, x, "occlusion", target=1, progress=False)
    image = tmp_path / "i.png"
    import cv2

    cv2.imwrite(str(image), np.full((16, 16, 3), 128, np.uint8))
    result = CliRunner().invoke(cli, ["explain", str(path), str(image), "-m", "occlusion", "--preprocess", "unit",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "looks like a" in result.output and "Traceback" not in result.output


def test_boxes_are_named_by_their_output(tmp_path):
    assert output_kind(onnx.ModelProto(), "t", (1, 100, 4), output="boxes").kind == "boxes"
    assert output_kind(onnx.ModelProto(), "t", (1, 100, 4), output="logits").kind == "sequence"


@pytest.mark.parametrize(("shape", "kind"), [((2, 1000), "classes"), ((2, 21, 8, 8), "map"), ((2, 5, 1, 1), "classes"),
                                             ((2, 40, 37), "sequence")])
def test_class_outputs_keep_class_targets(shape, kind):
    assert output_kind(onnx.ModelProto(), "logits", shape).kind == kind


def test_a_one_channel_map_predicts_the_pixels_above_its_threshold(tmp_path):
    path = tmp_path / "db.onnx"
    onnx.save(DBNET, path)
    model = onnxviz.load(path)
    model.use_preprocessing("unit")
    x = np.random.default_rng(2).random((1, 3, 16, 16)).astype(np.float32)
    probs = model.run(x, ("y",))[0][0, 0]
    assert 0 < (probs > 0.5).mean() < 1  # some pixels on, some off
    ex = onnxviz.explain(model, x, "saliency", target="0@predicted", progress=False)
    mask = (probs > 0.5).astype(np.float32)
    # the score is the sum of the probabilities over the predicted pixels only
    assert ex.scores[0] == pytest.approx(float((probs * mask).sum()), rel=1e-5)
    everything = onnxviz.explain(model, x, "saliency", target=0, progress=False)
    assert everything.scores[0] == pytest.approx(float(probs.sum()), rel=1e-5)
    assert ex.scores[0] < everything.scores[0]
