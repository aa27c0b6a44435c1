"""Inference BatchNormalization converts to a per-channel affine map whose input gradient is exact, also when the
gradient reaching it has the odd strides a reshape + transpose leave (PyTorch's own BatchNorm2d eval backward is
wrong there on CPU). Analytic oracle: y_k = sum_{c,t} (x[c, t] * f_c + s_c) * W[c, k], so
dy_k / dx[c, t] = f_c W[c, k]."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxviz

torch = pytest.importorskip("torch")
C, H, W, K = 128, 8, 10, 2


def _graph(path, rng) -> tuple[np.ndarray, np.ndarray]:
    scale, bias = rng.uniform(0.5, 2, C), rng.normal(size=C)
    mean, var = rng.normal(size=C), rng.uniform(0.5, 2, C)
    weight = rng.normal(size=(C, K))
    inits = [numpy_helper.from_array(a.astype(np.float32), n) for a, n in
             ((scale, "scale"), (bias, "bias"), (mean, "mean"), (var, "var"), (weight, "w"))]
    inits.append(numpy_helper.from_array(np.array([1, C, H * W], np.int64), "shape"))
    inits.append(numpy_helper.from_array(np.array([0], np.int64), "axes"))
    nodes = [helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["bn"], epsilon=1e-3),
             helper.make_node("Reshape", ["bn", "shape"], ["flat"]),
             helper.make_node("Transpose", ["flat"], ["tokens"], perm=[2, 0, 1]),  # (HW, 1, C): batch in the middle
             helper.make_node("MatMul", ["tokens", "w"], ["per_token"]),
             helper.make_node("ReduceSum", ["per_token", "axes"], ["y"], keepdims=0)]
    graph = helper.make_graph(nodes, "bn_tokens", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, C, H, W])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, K])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, path)
    return scale / np.sqrt(var + 1e-3), weight


def test_batch_norm_gradients_are_exact_under_odd_strides(tmp_path):
    rng = np.random.default_rng(0)
    factor, weight = _graph(tmp_path / "bn.onnx", rng)
    model = onnxviz.load(tmp_path / "bn.onnx", normalize=False, layout="NCHW", preprocessing="unit")
    x = rng.random((1, C, H, W)).astype(np.float32)
    for k in range(K):
        ours = onnxviz.explain(model, x, "saliency", target=k, abs=False, progress=False).attributions[0]
        expected = np.broadcast_to((factor * weight[:, k])[:, None, None], (C, H, W))
        np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)


def test_the_converted_batch_norm_takes_an_odd_strided_gradient_exactly(tmp_path):
    """The cotangent PyTorch's BatchNorm2d gets wrong (max |diff| ~10 on values ~4 with torch 2.14 on CPU): channels-
    last strides with batch stride C, as a transpose that put the batch in the middle leaves behind."""
    rng = np.random.default_rng(1)
    factor, _ = _graph(tmp_path / "bn.onnx", rng)
    model = onnxviz.load(tmp_path / "bn.onnx", normalize=False, layout="NCHW", preprocessing="unit")
    backend = model.gradient_backend()
    x = backend.to_tensor(rng.random((1, C, H, W)).astype(np.float32), requires_grad=True)
    (out,) = backend.forward(x, ("bn",), "standard")
    cotangent = torch.from_numpy(rng.normal(size=C * H * W).astype(np.float32)).as_strided(
        (1, C, H, W), (C, 1, W * C, C))
    (grad,) = torch.autograd.grad(out, x, cotangent)
    expected = cotangent.numpy() * factor[None, :, None, None]
    np.testing.assert_allclose(grad.numpy(), expected, rtol=1e-5, atol=1e-6)
