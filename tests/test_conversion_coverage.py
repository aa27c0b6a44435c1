"""Conversion coverage: torchvision architectures from both exporters must load, convert and pass parity.
Every op these graphs use is listed in CNN_OPS, whose onnx test cases must pass (test_op_cases.py)."""

from __future__ import annotations

import numpy as np
import pytest

import onnxviz

torch = pytest.importorskip("torch")

ARCHS = ["resnet18", "vgg11", "alexnet", "mobilenet_v2", "mobilenet_v3_small", "squeezenet1_0", "efficientnet_b0",
         "densenet121", "convnext_tiny", "lraspp_mobilenet_v3_large"]
SIZE = 224

# Op types (default domain) the normalized graphs below may contain; the test fails on any other.
CNN_OPS = {
    "Add", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat", "Constant", "Conv", "Div", "Dropout",
    "Erf", "Flatten", "Gather", "Gelu", "Gemm", "GlobalAveragePool", "HardSigmoid", "HardSwish", "LayerNormalization",
    "MatMul", "MaxPool", "Mul", "Pad", "ReduceMean", "Relu", "Reshape", "Resize", "Shape", "Sigmoid", "Slice", "Sub",
    "Transpose", "Unsqueeze",
}


class SegmentationLogits(torch.nn.Module):
    """torchvision segmentation models return a dict; exporters want tensors."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)["out"]


@pytest.mark.slow
@pytest.mark.parametrize("exporter", ["legacy", "dynamo"])
@pytest.mark.parametrize("arch", ARCHS)
def test_torchvision_export_converts_with_parity(arch, exporter, tmp_path):
    from models.exports import export, torchvision_net

    seg = {"num_classes": 5, "weights_backbone": None} if arch.startswith("lraspp") else {}
    net = torchvision_net(arch, seed=0, **seg)
    if arch.startswith("lraspp"):
        net = SegmentationLogits(net).eval()
    path = export(net, tmp_path / f"{arch}_{exporter}.onnx", exporter, size=SIZE)
    model = onnxviz.load(path)
    ops = {n.op_type for n in model.proto.graph.node}
    assert ops <= CNN_OPS, f"new op types {ops - CNN_OPS}: add them to CNN_OPS and check their onnx cases"
    model.torch  # noqa: B018
    assert model.parity.ok, str(model.parity)
    x = np.random.default_rng(0).standard_normal((2, 3, SIZE, SIZE)).astype(np.float32)
    with torch.no_grad():
        native = net(torch.from_numpy(x)).numpy()
    got = model.ort.run(x[:1], (model.outputs[0],))[0] if model.input.fixed_batch else \
        model.ort.run(x, (model.outputs[0],))[0]
    np.testing.assert_allclose(got, native[: len(got)], atol=1e-4 * max(1.0, float(np.abs(native).max())))
    if not arch.startswith("lraspp"):
        grads = onnxviz.explain(model, x, "saliency", progress=False).attributions
        assert grads.shape == x.shape and np.abs(grads).sum() > 0
