"""Exported exact GELU fused into one call (onnxviz/backends/fusion.py). Oracles: onnxruntime for the values and
the closed-form derivative of GELU, Phi(x) + x phi(x), for the gradient, on hand-built graphs in each grouping
an exporter writes; chains that are not GELU (another constant) or whose inner tensors are read stay as they are,
and so do views with backward rules."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

torch = pytest.importorskip("torch")
pytest.importorskip("onnx2torch")

from onnxviz.backends.torch import TorchBackend  # noqa: E402

RNG = np.random.default_rng(11)
W = RNG.standard_normal((5, 7)).astype(np.float32)  # (N, 5) -> (N, 7): not square
V = RNG.standard_normal((7, 3)).astype(np.float32)
ROOT2 = math.sqrt(2)


def _scaled(kind: str, sqrt2: float) -> list:
    if kind == "div":
        return [helper.make_node("Div", ["h", "c_scale"], ["scaled"])], sqrt2
    return [helper.make_node("Mul", ["c_scale", "h"], ["scaled"])], 1 / sqrt2


def gelu_graph(grouping: str = "torch", scale: str = "div", sqrt2: float = ROOT2, one: float = 1.0,
               half: float = 0.5, extra_output: str | None = None) -> onnx.ModelProto:
    """x (N, 5) -> h = x W -> GELU(h) written as exporters write it -> out = GELU(h) V (N, 3)."""
    scaled, scale_value = _scaled(scale, sqrt2)
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]), *scaled, helper.make_node("Erf", ["scaled"], ["erf"]),
             helper.make_node("Add", ["erf", "c_one"], ["plus"])]
    products = {  # the three groupings of x * 0.5 * (1 + erf): (first product's inputs, second's)
        "torch": (["h", "plus"], ["prod", "c_half"]),
        "half_first": (["h", "c_half"], ["plus", "prod"]),
        "half_on_erf": (["c_half", "plus"], ["prod", "h"]),
    }[grouping]
    nodes += [helper.make_node("Mul", products[0], ["prod"]), helper.make_node("Mul", products[1], ["g"])]
    nodes.append(helper.make_node("MatMul", ["g", "V"], ["out"]))
    constants = {"W": W, "V": V, "c_scale": np.float32(scale_value), "c_one": np.float32(one),
                 "c_half": np.float32(half)}
    outputs = [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 3])]
    if extra_output:
        outputs.append(helper.make_tensor_value_info(extra_output, TensorProto.FLOAT, None))
    graph = helper.make_graph(nodes, "gelu", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 5])],
                              outputs, [numpy_helper.from_array(np.asarray(v), k) for k, v in constants.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _phi(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cdf = 0.5 * (1 + np.vectorize(math.erf)(h / ROOT2))
    return cdf, np.exp(-h**2 / 2) / math.sqrt(2 * math.pi)


def _erfs_and_gelus_of(module, node) -> tuple[int, int]:
    erf = node.op == "call_module" and "Erf" in type(module.get_submodule(node.target)).__name__
    return int(erf), int(node.target is torch.nn.functional.gelu)


def _erfs_and_gelus(view) -> tuple[int, int]:
    counts = [_erfs_and_gelus_of(view, n) for n in view.graph.nodes]
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


X = RNG.standard_normal((4, 5)).astype(np.float32)


@pytest.mark.parametrize("grouping", ["torch", "half_first", "half_on_erf"])
@pytest.mark.parametrize("scale", ["div", "mul"])
def test_each_grouping_is_one_gelu_with_the_same_values_and_gradient(grouping, scale):
    backend = TorchBackend(gelu_graph(grouping, scale))
    view = backend.view(("out",), None)
    assert _erfs_and_gelus(view) == (0, 1)
    x = torch.from_numpy(X).requires_grad_(True)
    out = view(x)[0]
    h = X.astype(np.float64) @ W
    cdf, pdf = _phi(h)
    np.testing.assert_allclose(out.detach().numpy(), (h * cdf) @ V, rtol=1e-5, atol=1e-5)
    weights = RNG.standard_normal((4, 3))
    (grad,) = torch.autograd.grad(out, x, torch.from_numpy(weights.astype(np.float32)))
    expected = ((weights @ V.T) * (cdf + h * pdf)) @ W.T  # d out / d x through GELU' = Phi + x phi
    np.testing.assert_allclose(grad.numpy(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("change", [{"sqrt2": 2.0}, {"one": 2.0}, {"half": 0.25}])
def test_a_chain_with_other_constants_is_not_gelu_and_stays(change):
    proto = gelu_graph(**change)
    view = TorchBackend(proto).view(("out",), None)
    assert _erfs_and_gelus(view) == (1, 0)
    import onnxruntime as ort

    expected = ort.InferenceSession(proto.SerializeToString()).run(["out"], {"x": X})[0]
    np.testing.assert_allclose(view(torch.from_numpy(X))[0].numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("inner", ["scaled", "erf", "plus", "prod"])
def test_a_chain_whose_inner_tensor_is_read_stays(inner):
    backend = TorchBackend(gelu_graph(extra_output=inner))
    view = backend.view(("out", inner), None)
    assert _erfs_and_gelus(view) == (1, 0)
    assert _erfs_and_gelus(backend.view(("out",), None)) == (0, 1)  # the same model, not asked for it


def test_views_with_backward_rules_keep_the_elementwise_nodes():
    from onnxviz.backward import DeepLift, Guided

    backend = TorchBackend(gelu_graph())
    erf = next(n.target for n in backend.module.graph.nodes if _erfs_and_gelus_of(backend.module, n) == (1, 0))
    for rules in (DeepLift(), Guided()):
        view = backend.view(("out",), rules)  # a rule may wrap the Erf module, under the same name
        assert erf in {n.target for n in view.graph.nodes}
        assert _erfs_and_gelus(view)[1] == 0


def test_a_legacy_torch_export_of_gelu_is_fused(tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.GELU(), torch.nn.Linear(7, 3)).eval()
    path = tmp_path / "mlp.onnx"
    torch.onnx.export(net, (torch.from_numpy(X),), str(path), dynamo=False, opset_version=17,
                      input_names=["x"], output_names=["out"])
    view = TorchBackend(onnx.load(path)).view(("out",), None)
    assert _erfs_and_gelus(view) == (0, 1)
    with torch.no_grad():
        np.testing.assert_allclose(view(torch.from_numpy(X))[0].numpy(), net(torch.from_numpy(X)).numpy(),
                                   rtol=1e-5, atol=1e-6)


def test_the_gelu_output_itself_can_be_a_layer():
    """A CAM layer at the activation's output: the fused call stands in for it, value and gradient."""
    backend = TorchBackend(gelu_graph(extra_output="g"))
    view = backend.view(("out", "g"), None)
    assert _erfs_and_gelus(view) == (0, 1)
    out, g = view(torch.from_numpy(X).requires_grad_(True))
    h = X.astype(np.float64) @ W
    np.testing.assert_allclose(g.detach().numpy(), h * _phi(h)[0], rtol=1e-5, atol=1e-6)
    (grad,) = torch.autograd.grad(out.sum(), g)
    np.testing.assert_allclose(grad.numpy(), np.broadcast_to(V.sum(axis=1), g.shape), rtol=1e-5)


def test_a_constant_that_would_broadcast_to_more_axes_keeps_the_chain():
    """0.5 given as a (1, 1, 1) tensor makes the (N, 7) product (1, N, 7): one gelu call would drop that axis."""
    proto = gelu_graph()
    half = next(t for t in proto.graph.initializer if t.name == "c_half")
    half.CopyFrom(numpy_helper.from_array(np.full((1, 1, 1), 0.5, np.float32), "c_half"))
    del proto.graph.output[:]
    proto.graph.output.append(helper.make_tensor_value_info("out", TensorProto.FLOAT, None))
    view = TorchBackend(proto).view(("out",), None)
    assert _erfs_and_gelus(view) == (1, 0)
    import onnxruntime as ort

    expected = ort.InferenceSession(proto.SerializeToString()).run(["out"], {"x": X})[0]
    got = view(torch.from_numpy(X))[0].numpy()
    assert got.shape == expected.shape == (1, 4, 3)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
