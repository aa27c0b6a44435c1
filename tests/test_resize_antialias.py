"""Antialiased Resize (opset 18+), what PyTorch's `interpolate(..., antialias=True)` exports to (timm ViTs with a
dynamic image size resample their position embedding so): converted to torch and equal to onnxruntime's own
result, values and input gradients (the gradient oracle: onnxruntime's Resize is linear in its input, so the
gradient of sum(w * y) is the transposed resize of w, read off onnxruntime by resizing unit images)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxviz

torch = pytest.importorskip("torch")
IN, OUT = (9, 14), (4, 5)  # non-square, downsampling by uneven factors: the antialias filter is wider than 1 pixel


def _resize_graph(mode: str, **attrs) -> onnxviz.Model:
    sizes = numpy_helper.from_array(np.array([1, 2, *OUT], np.int64), "sizes")
    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode=mode, antialias=1, **attrs)
    graph = helper.make_graph([node], "resize", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, *IN])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, *OUT])], [sizes])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    return onnxviz.load(proto, normalize=False, layout="NCHW", preprocessing="unit")


TORCH_AA = {"linear": {"exclude_outside": 1}, "cubic": {"cubic_coeff_a": -0.5, "exclude_outside": 1}}  # as exported


@pytest.mark.parametrize("mode", ["linear", "cubic"])
def test_an_antialiased_resize_converts_to_what_onnxruntime_computes(mode):
    model = _resize_graph(mode, coordinate_transformation_mode="half_pixel", **TORCH_AA[mode])
    backend = model.gradient_backend()
    assert model.parity.max_abs_diff < 1e-5
    x = np.random.default_rng(0).random((1, 2, *IN)).astype(np.float32)
    expected = model.ort.run(x, ("y",))[0]
    plain = torch.nn.functional.interpolate(torch.from_numpy(x), size=OUT, mode="bilinear" if mode == "linear"
                                            else "bicubic", align_corners=False).numpy()
    assert np.abs(plain - expected).max() > 1e-2  # without the filter it would be another function
    xt = backend.to_tensor(x, requires_grad=True)
    (y,) = backend.forward(xt, ("y",))
    np.testing.assert_allclose(y.detach().numpy(), expected, atol=1e-5)
    weights = np.random.default_rng(1).normal(size=expected.shape).astype(np.float32)
    (grad,) = torch.autograd.grad((y * torch.from_numpy(weights)).sum(), xt)
    unit = np.eye(2 * IN[0] * IN[1], dtype=np.float32).reshape(-1, 1, 2, *IN)
    columns = np.concatenate([model.ort.run(u, ("y",))[0] for u in unit])  # the resize of each unit image
    transposed = np.einsum("kcij,cij->k", columns, weights[0]).reshape(1, 2, *IN)
    np.testing.assert_allclose(grad.numpy(), transposed, atol=1e-5)


@pytest.mark.parametrize(("mode", "attrs"), [("cubic", {"cubic_coeff_a": -0.75, "exclude_outside": 1}),
                                            ("linear", {"exclude_outside": 0})])
def test_an_antialiased_resize_torch_cannot_compute_is_still_refused_by_name(mode, attrs):
    """Keys' a = -0.75 (OpenCV's) or weights spread outside the image: interpolate(antialias=True) computes neither."""
    model = _resize_graph(mode, coordinate_transformation_mode="half_pixel", **attrs)
    with pytest.raises(onnxviz.ConversionError, match="Resize with antialias"):
        model.gradient_backend()
