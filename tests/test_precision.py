"""Deployed precisions (issue 21): graphs converted to fp16 (onnxconverter-common), quantized to int8 with
onnxruntime's tools (static QDQ, dynamic, and the fused QOperator format), explained with exact gradients of what
they compute: fp16 on a float32 copy, int8 through fake quantization with straight-through rounding. Oracles: a
hand-built QDQ graph whose gradient is known, and the float model the variants came from (the trained digits CNN)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

import onnxviz
from onnxviz.cli import cli
from onnxviz.demo import demo_model_path

pytest.importorskip("torch")
float16 = pytest.importorskip("onnxconverter_common.float16")
quantization = pytest.importorskip("onnxruntime.quantization")


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """The float digits CNN, 48 of its digits, and its fp16 / int8 variants made with the real tools."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from models.digits import digit_images

    folder = tmp_path_factory.mktemp("precision")
    base = onnxviz.load(demo_model_path())
    images, _ = digit_images()
    x = onnxviz.load_image(list(np.repeat(images[:48, ..., None], 3, axis=-1)), base)
    proto = onnx.load(str(demo_model_path()))
    onnx.save(float16.convert_float_to_float16(proto), folder / "fp16.onnx")
    onnx.save(float16.convert_float_to_float16(proto, keep_io_types=True), folder / "fp16_io32.onnx")
    quant_pre_process(str(demo_model_path()), str(folder / "pre.onnx"))

    class Reader(quantization.CalibrationDataReader):
        def __init__(self):
            self.rows = iter([{base.input.name: x[i : i + 1]} for i in range(32)])

        def get_next(self):
            return next(self.rows, None)

    for name, fmt, per_channel in (("qdq", quantization.QuantFormat.QDQ, False),
                                   ("qdq_per_channel", quantization.QuantFormat.QDQ, True),
                                   ("qop", quantization.QuantFormat.QOperator, False)):
        quantization.quantize_static(str(folder / "pre.onnx"), str(folder / f"{name}.onnx"), Reader(),
                                     quant_format=fmt, per_channel=per_channel)
    quantization.quantize_dynamic(str(folder / "pre.onnx"), str(folder / "dynamic.onnx"),
                                  weight_type=quantization.QuantType.QInt8)
    return base, x[32:], folder  # calibrated on the first 32, explained on the other 16


def _maps(model, x, method):
    return onnxviz.explain(model, x.astype(model.input.dtype), method, target=3, progress=False).maps()


@pytest.mark.parametrize("variant", ["fp16", "fp16_io32"])
def test_an_fp16_graph_is_fed_its_dtype_and_differentiated_in_float32(digits, variant):
    """onnxruntime runs the fp16 graph on fp16 inputs (its declared dtype); gradients are those of its float32 copy,
    equal to the float model's up to fp16 rounding of the weights."""
    base, x, folder = digits
    model = onnxviz.load(folder / f"{variant}.onnx")
    assert model.input.dtype == (np.float16 if variant == "fp16" else np.float32)
    assert model.precision.startswith("float16 (onnxruntime runs it so; gradients on a float32 copy)")
    (out,) = model.run(x.astype(model.input.dtype), ("output",))
    assert out.dtype == (np.float16 if variant == "fp16" else np.float32)
    rounded = x.astype(np.float16).astype(np.float32)  # the input both see: an fp16 graph is fed fp16 pixels
    for method in ("saliency", "integrated_gradients", "gradcam"):
        ours, theirs = _maps(model, rounded, method), _maps(base, rounded, method)
        # fp16 weights can tip a max-pool or ReLU choice near a tie: a few values follow another path (measured:
        # 3 of 16,384 saliency values off by 2-3 % of the maximum, the rest within 0.1 %)
        close = np.abs(ours - theirs) <= 2e-2 * np.abs(theirs).max()
        assert close.mean() > 0.999 and np.corrcoef(ours.ravel(), theirs.ravel())[0, 1] > 0.999, method
    ex = onnxviz.explain(model, x.astype(model.input.dtype), "saliency", progress=False)
    assert ex.backend == "onnxruntime+torch" and ex.extras["precision"] == model.precision


def test_fake_quantization_has_the_straight_through_gradient():
    """y = W^T dq(q(x)) with an int8 grid of step 0.1: inside the grid the gradient of y_k is W[:, k] (rounding
    passes straight through), outside it (|x| beyond 12.7 / 12.8) it is 0 (clipped). Parity is exact."""
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(6, 3)).astype(np.float32)
    inits = [numpy_helper.from_array(np.array(0.1, np.float32), "s"),
             numpy_helper.from_array(np.array(0, np.int8), "z"), numpy_helper.from_array(weight, "w")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"]),
             helper.make_node("MatMul", ["d", "w"], ["y"])]
    graph = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], inits)
    model = onnxviz.load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
    x = np.array([[0.31, -2.04, 13.5, 5.55, -20.0, 0.0], [1.0, 1.0, 1.0, -13.0, 12.6, 7.77]], np.float32)
    for k in range(3):
        ex = onnxviz.explain(model, x, "saliency", target=k, abs=False, progress=False)
        inside = (x >= -12.8) & (x <= 12.7)
        np.testing.assert_allclose(ex.attributions, weight[:, k] * inside, rtol=1e-6)
    assert model.parity.max_abs_diff < 1e-6  # the same grid: values equal but for the matmul's float32 rounding
    assert model.precision.startswith("int8 QDQ")


@pytest.mark.parametrize(("variant", "floors"), [("qdq", (0.9, 0.95, 0.95)), ("qdq_per_channel", (0.9, 0.95, 0.95)),
                                               ("dynamic", (0.9, 0.95, 0.95))])
def test_int8_models_explain_like_the_float_model_they_came_from(digits, variant, floors):
    """Saliency, integrated gradients and Grad-CAM of the int8 digits CNN against the float CNN's (Pearson over 16
    digits; measured 0.95 / 0.98 / 1.00 for QDQ, 0.96 / 1.00 / 1.00 for dynamic). Parity holds at the tolerance the
    output's grid allows (a few steps: onnxruntime's fused kernels requantize in fixed point)."""
    base, x, folder = digits
    model = onnxviz.load(folder / f"{variant}.onnx")
    model.gradient_backend()
    assert model.parity.ok
    for method, floor in zip(("saliency", "integrated_gradients", "gradcam"), floors, strict=True):
        r = np.corrcoef(_maps(model, x, method).ravel(), _maps(base, x, method).ravel())[0, 1]
        assert r > floor, (method, r)
    (ours,), (theirs,) = model.run(x, ("output",)), base.run(x, ("output",))
    assert (ours.argmax(1) == theirs.argmax(1)).all()


def test_fused_quantized_kernels_are_refused_by_name(digits):
    _, x, folder = digits
    model = onnxviz.load(folder / "qop.onnx", limits=onnxviz.Limits(allowed_domains=frozenset({"com.microsoft"})))
    assert "int8 fused kernels" in model.precision
    with pytest.raises(onnxviz.ConversionError, match=r"fused quantized kernels \(.*QLinearConv.*QDQ format"):
        model.gradient_backend()
    assert onnxviz.explain(model, x[:1], "occlusion", window=(8,), stride=(8,), progress=False).attributions.any()


def test_info_states_the_precision(digits):
    _, _, folder = digits
    for variant, text in (("fp16", "float16 (onnxruntime runs it so"), ("qdq", "int8 QDQ"),
                          ("dynamic", "int8 dynamic")):
        run = CliRunner().invoke(cli, ["info", str(folder / f"{variant}.onnx")])
        assert run.exit_code == 0, run.output
        assert any(line.startswith("precision") and text in line for line in run.output.splitlines()), run.output


@pytest.fixture(scope="module")
def resnet_variants(tmp_path_factory):
    """resnet18 (random weights, 64 x 64) exported by the legacy exporter, then converted and quantized as the
    issue's users did: fp16, static QDQ calibrated on photo crops, dynamic."""
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from skimage import data

    from models.exports import export

    folder = tmp_path_factory.mktemp("resnet_variants")
    torch.manual_seed(0)
    path = export(torchvision.models.resnet18(num_classes=10).eval(), folder / "fp32.onnx", "legacy", size=64)
    onnx.save(float16.convert_float_to_float16(onnx.load(str(path))), folder / "fp16.onnx")
    quant_pre_process(str(path), str(folder / "pre.onnx"))
    base = onnxviz.load(path)
    crops = [im[k * 40 : k * 40 + 256, k * 40 : k * 40 + 256] / 255.0 for im in (data.chelsea(), data.coffee())
             for k in range(4)]
    x = onnxviz.load_image(crops, base)

    class Reader(quantization.CalibrationDataReader):
        def __init__(self):
            self.rows = iter([{base.input.name: x[i : i + 1]} for i in range(len(x))])

        def get_next(self):
            return next(self.rows, None)

    quantization.quantize_static(str(folder / "pre.onnx"), str(folder / "qdq.onnx"), Reader(),
                                 quant_format=quantization.QuantFormat.QDQ)
    quantization.quantize_dynamic(str(folder / "pre.onnx"), str(folder / "dynamic.onnx"),
                                  weight_type=quantization.QuantType.QInt8)
    return folder, x[:2]


@pytest.mark.parametrize("variant", ["fp16", "qdq", "dynamic"])
def test_resnet18_variants_convert_with_parity_and_exact_gradients(resnet_variants, variant):
    """Residual Adds between QDQ pairs, batch norms folded by the exporter, a float16 graph: each converts, agrees
    with onnxruntime within its tolerance, and gradient methods run on PyTorch (not on estimates)."""
    folder, x = resnet_variants
    model = onnxviz.load(folder / f"{variant}.onnx")
    model.gradient_backend()
    assert model.parity.ok, model.parity
    for method in ("saliency", "gradcam"):
        ex = onnxviz.explain(model, x.astype(model.input.batch_dtype), method, target=3, progress=False)
        assert ex.backend == "onnxruntime+torch" and "precision" in ex.extras, (method, ex.backend)
        assert np.isfinite(ex.attributions).all() and np.abs(ex.attributions).max() > 0


def test_the_precision_read_once_follows_a_replaced_graph(digits):
    """Model.precision is read once per graph (every explain asks for it): a model whose graph is replaced
    reads it again."""
    base, _, folder = digits
    model = onnxviz.load(folder / "fp16.onnx")
    assert model.precision.startswith("float16")
    model.proto = base.proto
    assert model.precision == "float32"
