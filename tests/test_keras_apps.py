"""Keras applications exported by tf2onnx (issue 19's coverage matrix): MobileNetV2, ResNet50, EfficientNetB0,
Xception and DenseNet121 at a non-square 96 x 128 input, NHWC, ending in Softmax, with seeded weights
(`models/keras_apps.py` made the graph skeletons once in a TensorFlow environment; `restore` refills the kernels).

Oracles independent of onnxviz's PyTorch conversion:
- saliency: directional derivatives of the logit by central differences in float64 through onnx's reference
  evaluator (h = 1e-7 on a piecewise-linear network crosses almost no kink), against our float32 gradient;
- Grad-CAM: these heads are the last activation -> global average pooling -> Dense, so the gradient of logit k at
  every position of the activation is W[c, k] / (h w) and Grad-CAM is ReLU(sum_c W[c, k] A_c / (h w)) with A
  read from onnxruntime: exact, and transposing the 3 x 4 grid cannot pass."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import onnx.reference
import onnxruntime as ort
import pytest
from onnx import TensorProto, numpy_helper

import onnxviz
from models.keras_apps import APPS, HEIGHT, WIDTH, restore
from onnxviz.backends.graph import with_outputs

pytest.importorskip("torch")
SKELETONS = Path(__file__).resolve().parent / "data" / "keras"
# EfficientNet rescales 0..255 pixels itself (its Rescaling + Normalization layers are in the graph)
SCALE = {"efficientnetb0": 255.0}
TARGET = 3


@pytest.fixture(scope="module")
def keras_app(tmp_path_factory):
    built: dict = {}

    def get(name: str):
        if name not in built:
            path = tmp_path_factory.mktemp("keras") / f"{name}.onnx"
            onnx.save(restore(SKELETONS / f"{name}.skeleton.onnx"), str(path))
            model = onnxviz.load(path, preprocessing="unit")
            x = np.random.default_rng(0).random((1, HEIGHT, WIDTH, 3)) * SCALE.get(name, 1.0)
            built[name] = path, model, x.astype(np.float32)
        return built[name]
    return get


def _float64(proto: onnx.ModelProto) -> onnx.ModelProto:
    """The graph changed in place to compute in float64 (initializers, declared types and Cast targets)."""
    for t in proto.graph.initializer:
        if t.data_type == TensorProto.FLOAT:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float64), t.name))
    for info in (*proto.graph.input, *proto.graph.output, *proto.graph.value_info):
        if info.type.tensor_type.elem_type == TensorProto.FLOAT:
            info.type.tensor_type.elem_type = TensorProto.DOUBLE
    for node in proto.graph.node:
        for a in node.attribute:
            if a.name == "to" and a.i == TensorProto.FLOAT:
                a.i = TensorProto.DOUBLE
    return proto


def _head(proto: onnx.ModelProto) -> tuple[onnx.NodeProto, onnx.NodeProto]:
    """(the GlobalAveragePool the Dense layer reads, through shape-only ops; that MatMul)."""
    (matmul,) = [n for n in proto.graph.node if n.op_type == "MatMul"]
    producers = {out: n for n in proto.graph.node for out in n.output}
    node = producers[matmul.input[0]]
    while node.op_type in ("Squeeze", "Reshape", "Flatten", "Transpose"):
        node = producers[node.input[0]]
    assert node.op_type == "GlobalAveragePool", node
    return node, matmul


def _names() -> list[str]:
    return [app.lower() for app in APPS]


@pytest.mark.parametrize("name", _names())
def test_a_keras_application_loads_as_nhwc_with_a_softmax_tail_and_a_last_stage_layer(keras_app, name):
    _, model, _ = keras_app(name)
    assert model.input.layout == "NHWC" and model.input_size == (HEIGHT, WIDTH)
    assert model.proto.graph.output[0].name in model.softmax_tails
    layer = model.default_layer
    assert layer is not None and layer.layout == "NCHW" and layer.spatial == (3, 4), layer  # stride 32
    assert _head(model.proto)[0].input[0] == layer.name  # the activation the head pools


@pytest.mark.parametrize("name", _names())
def test_saliency_on_a_keras_application_equals_float64_directional_derivatives(keras_app, name):
    path, model, x = keras_app(name)
    logits = model.softmax_tails[model.proto.graph.output[0].name]
    reference = onnx.reference.ReferenceEvaluator(with_outputs(_float64(onnx.load(str(path))), (logits,)))
    input_name = model.proto.graph.input[0].name

    def logit(z: np.ndarray) -> float:
        return float(reference.run([logits], {input_name: z})[0][0, TARGET])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grad = onnxviz.explain(model, x, "saliency", target=TARGET, abs=False, progress=False).attributions[0]
    rng = np.random.default_rng(1)
    h = 1e-7 * SCALE.get(name, 1.0)
    for _ in range(3):
        d = rng.standard_normal(x.shape)
        theirs = (logit(x + h * d) - logit(x - h * d)) / (2 * h)
        ours = float((grad.astype(np.float64) * d[0]).sum())
        # float32 backward vs a float64 difference: rounding of ~1e-6 per term, summed over 36864 terms of mixed sign
        assert ours == pytest.approx(theirs, rel=1e-3, abs=1e-4 * float(np.abs(grad * d[0]).sum()))


@pytest.mark.parametrize("name", _names())
def test_gradcam_on_a_keras_application_equals_the_dense_weights_times_the_pooled_activation(keras_app, name):
    path, model, x = keras_app(name)
    layer = model.default_layer
    session = ort.InferenceSession(with_outputs(onnx.load(str(path)), (layer.name,)).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    activation = session.run([layer.name], {model.proto.graph.input[0].name: x})[0][0].astype(np.float64)
    matmul = _head(model.proto)[1]
    weights = {t.name: numpy_helper.to_array(t) for t in model.proto.graph.initializer}[matmul.input[1]]
    _, h, w = activation.shape
    maps = np.maximum(np.einsum("ck,chw->khw", weights / (h * w), activation), 0)
    target = int(maps.max(axis=(1, 2)).argmax())  # a class with positive evidence: an all-zero map says little
    theirs = maps[target]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = onnxviz.explain(model, x, "gradcam", target=target, progress=False).raw[0]
    assert theirs.max() > 0
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5 * theirs.max())  # float32 sums over 2048 channels
