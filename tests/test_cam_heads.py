"""Issue 15: `cam` reads any head that provably averages the whole map before its linear layer (open_nsfw's
AveragePool with a kernel the size of the map, tf2onnx's Transpose before the Flatten), and refuses pooling that
does not (a smaller kernel, padding)."""

from __future__ import annotations

import numpy as np
import pytest

import onnxviz
from tests.tiny_models import pooled_net

RNG = np.random.default_rng(3)
CONV = RNG.standard_normal((5, 2, 3, 3)).astype(np.float32)
FC = RNG.standard_normal((4, 5)).astype(np.float32)
X = RNG.standard_normal((3, 2, 6, 10)).astype(np.float32)


@pytest.mark.parametrize("transpose", [False, True], ids=["NCHW", "transposed to NHWC before the Flatten"])
def test_cam_on_an_average_pool_head_equals_the_weighted_channels(transpose):
    model = onnxviz.load(pooled_net(CONV, FC, transpose=transpose))
    ex = onnxviz.explain(model, X, "cam", target=[0, 2, 3], layer="act", progress=False)
    acts = model.run(X, ("act",))[0]
    expected = np.maximum(np.einsum("nc,nchw->nhw", FC[[0, 2, 3]], acts), 0)  # Zhou et al.: sum_c w_kc A_c
    np.testing.assert_allclose(ex.raw, expected, rtol=1e-5, atol=1e-5)
    assert ex.raw.shape == (3, 6, 10)


@pytest.mark.parametrize("pool", ["partial", "padded"])
def test_pooling_that_does_not_average_the_whole_map_is_refused(pool):
    model = onnxviz.load(pooled_net(CONV, FC, pool=pool) if pool == "padded" else _partial())
    with pytest.raises(onnxviz.MethodError, match="cam needs a global-average-pooling \\+ linear head"):
        onnxviz.explain(model, X, "cam", layer="act", progress=False)


def _partial():
    return pooled_net(CONV, np.repeat(FC, 4, axis=1), pool="partial")  # 2 x 2 pooled cells per channel


class _ConvClasses:
    """The seed material's "GAP visualization" head: a final convolution with one filter per class, global average
    pooling, a Softmax, no linear layer (exported from PyTorch, non-square 40 x 56)."""

    @staticmethod
    def build(path):
        torch = pytest.importorskip("torch")

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                torch.manual_seed(0)
                self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 2, 1), torch.nn.ReLU(),
                                                    torch.nn.Conv2d(8, 16, 3, 2, 1), torch.nn.ReLU())
                self.classes = torch.nn.Conv2d(16, 5, 1)

            def forward(self, x):
                return torch.softmax(self.classes(self.features(x)).mean((2, 3)), dim=1)

        net = Net().eval()
        torch.onnx.export(net, (torch.rand(1, 3, 40, 56),), str(path), dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["p"], dynamic_axes={"x": {0: "n"}, "p": {0: "n"}})
        return net


def test_cam_on_a_conv_per_class_head_reads_the_class_channel_or_the_1x1_kernel(tmp_path):
    """At the class convolution, the map of class k is its own channel (the pooled channels are the logits); one layer
    earlier, a 1x1 convolution before the pooling is the linear head: sum_c W[k, c] A_c."""
    import torch

    net = _ConvClasses.build(tmp_path / "conv_classes.onnx")
    model = onnxviz.load(tmp_path / "conv_classes.onnx", preprocessing="unit")
    assert model.default_layer.op_type == "Conv" and model.default_layer.shape[1] == 5
    x = np.random.default_rng(0).random((2, 3, 40, 56)).astype(np.float32)
    with torch.no_grad():
        features = net.features(torch.from_numpy(x))
        classes = net.classes(features).numpy()
    ex = onnxviz.explain(model, x, "cam", target=[3, 1], progress=False)
    np.testing.assert_allclose(ex.raw, np.maximum(classes[[0, 1], [3, 1]], 0), rtol=1e-5, atol=1e-6)
    before = [layer.name for layer in model.layers if layer.op_type == "Relu"][-1]
    ex = onnxviz.explain(model, x, "cam", target=[3, 1], layer=before, progress=False)
    kernel = net.classes.weight.detach().numpy()[:, :, 0, 0]
    expected = np.maximum(np.einsum("nc,nchw->nhw", kernel[[3, 1]], features.numpy()), 0)
    np.testing.assert_allclose(ex.raw, expected, rtol=1e-5, atol=1e-6)
