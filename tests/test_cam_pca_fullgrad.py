"""EigenGrad-CAM, KPCA-CAM and FullGrad (issue 22) against pytorch-grad-cam on the same network: our layer map put
through pytorch-grad-cam's own final scaling must equal its output value by value. The network reads a non-square
40 x 56 input, has convolutions with and without bias, batch norms (folded into the convolutions by the exporter:
FullGrad's bias terms must still be the native batch norms') and a flatten + dense head, not global pooling."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest

import onnxviz

torch = pytest.importorskip("torch")
grad_cam = pytest.importorskip("pytorch_grad_cam")
pytest.importorskip("sklearn")
from pytorch_grad_cam.utils.image import scale_cam_image  # noqa: E402
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

nn = torch.nn
H, W = 40, 56


def _net() -> nn.Sequential:
    torch.manual_seed(21)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 12, 3, padding=1, bias=False), nn.BatchNorm2d(12), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(12 * 10 * 14, 5))
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.bias.uniform_(-0.3, 0.3)
    return net.eval()


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    net = _net()
    path = tmp_path_factory.mktemp("pca") / "net.onnx"
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.rand(1, 3, H, W),), str(path), dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    return net, onnxviz.load(path, preprocessing="unit")


def _images(n: int = 2, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).random((n, 3, H, W)).astype(np.float32)
    x[:, :, :, : W // 3] *= 0.2
    return x


def _layer(model) -> str:
    """The ONNX tensor of the third block's ReLU (native module net[8])."""
    return [layer.name for layer in model.layers if layer.op_type == "Relu"][2]


def _as_theirs(raw: np.ndarray) -> np.ndarray:
    """pytorch-grad-cam's finish: scale and resize per layer, then scale the layers' mean again."""
    return scale_cam_image(scale_cam_image(raw, (W, H)))


def _theirs(cam_class, net, x: np.ndarray, targets, **kwargs) -> np.ndarray:
    with cam_class(net, [net[8]], **kwargs) as cam:
        return cam(torch.from_numpy(x), [ClassifierOutputTarget(int(t)) for t in targets])


def test_eigengradcam_equals_pytorch_grad_cam(pair):
    net, model = pair
    x = _images()
    ours = onnxviz.explain(model, x, "eigengradcam", target=[1, 4], layer=_layer(model), progress=False)
    expected = _theirs(grad_cam.EigenGradCAM, net, x, [1, 4])
    np.testing.assert_allclose(_as_theirs(ours.raw), expected, atol=1e-4)
    # not Eigen-CAM (its sibling without gradients): that one ignores the class
    plain = onnxviz.explain(model, x, "eigencam", layer=_layer(model), progress=False)
    assert np.abs(_as_theirs(plain.raw) - expected).max() > 0.05


@pytest.mark.parametrize(("kernel", "gamma"), [("sigmoid", None), ("rbf", 0.5)])
def test_kpcacam_equals_pytorch_grad_cam(pair, kernel, gamma):
    from pytorch_grad_cam.kpca_cam import KPCA_CAM

    net, model = pair
    x = _images(seed=1)
    ours = onnxviz.explain(model, x, "kpcacam", layer=_layer(model), kernel=kernel, gamma=gamma, progress=False)
    assert ours.backend == "onnxruntime"
    expected = _theirs(KPCA_CAM, net, x, [0, 0], kernel=kernel, gamma=gamma)
    np.testing.assert_allclose(_as_theirs(ours.raw), expected, atol=1e-4)


def test_fullgrad_equals_pytorch_grad_cam(pair):
    net, model = pair
    x = _images(seed=2)
    ours = onnxviz.explain(model, x, "fullgrad", target=[2, 3], progress=False)
    with grad_cam.FullGrad(net, []) as cam, contextlib.redirect_stdout(io.StringIO()):
        expected = cam(torch.from_numpy(x), [ClassifierOutputTarget(2), ClassifierOutputTarget(3)])
    assert ours.raw.shape == (2, H, W)
    np.testing.assert_allclose(ours.raw, expected, atol=1e-4)


class NormAfterSum(nn.Module):
    """A batch norm after a residual sum: no convolution absorbs it, so it stays a BatchNormalization node."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(22)
        self.stem, self.branch = nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(6, 6, 3, padding=1)
        self.norm = nn.BatchNorm2d(6)
        self.head = nn.Sequential(nn.ReLU(), nn.MaxPool2d(4), nn.Flatten(), nn.Linear(6 * 10 * 14, 3))
        with torch.no_grad():
            self.norm.running_mean.uniform_(-0.3, 0.3)
            self.norm.bias.uniform_(-0.3, 0.3)

    def forward(self, x):
        h = torch.relu(self.stem(x))
        return self.head(self.norm(h + self.branch(h)))


def test_fullgrad_takes_the_bias_of_a_batch_norm_left_in_the_graph(tmp_path):
    net = NormAfterSum().eval()
    path = tmp_path / "norm.onnx"
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.rand(1, 3, H, W),), str(path), dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    model = onnxviz.load(path, preprocessing="unit")
    assert any(layer.op_type == "BatchNormalization" for layer in model.layers)
    x = _images(n=1, seed=3)
    ours = onnxviz.explain(model, x, "fullgrad", target=1, progress=False)
    with grad_cam.FullGrad(net, []) as cam, contextlib.redirect_stdout(io.StringIO()):
        expected = cam(torch.from_numpy(x), [ClassifierOutputTarget(1)])
    np.testing.assert_allclose(ours.raw, expected, atol=1e-4)


def test_fullgrad_refuses_a_graph_without_biases(tmp_path):
    from tests.tiny_models import linear

    model = onnxviz.load(linear(np.ones((2, 12), np.float32), np.zeros(2, np.float32), shape=(3, 2, 2)))
    with pytest.raises(onnxviz.MethodError, match="bias"):
        onnxviz.explain(model, np.ones((1, 3, 2, 2), np.float32), "fullgrad", target=0, progress=False)


def test_kpcacam_refuses_a_bad_gamma(pair):
    _, model = pair
    with pytest.raises(onnxviz.OptionError, match="gamma"):
        onnxviz.explain(model, _images(n=1), "kpcacam", layer=_layer(model), gamma=-1.0, progress=False)


class GapNet(nn.Module):
    """Features, global average pooling, a dense layer: pytorch-grad-cam runs the dense layer on the concepts."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(23)
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(8, 10, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(10, 6)

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


def test_dff_equals_pytorch_grad_cam(tmp_path):
    from pytorch_grad_cam import DeepFeatureFactorization

    net = GapNet().eval()
    path = tmp_path / "gap.onnx"
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.rand(1, 3, H, W),), str(path), dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    model = onnxviz.load(path, preprocessing="unit")
    layer = [layer.name for layer in model.layers if layer.op_type == "Relu"][1]
    x = _images(n=2, seed=4)
    ours = onnxviz.explain(model, x, "dff", target=[2, 5], layer=layer, n_components=4, progress=False)
    for i in range(2):  # pytorch-grad-cam factorizes the whole batch at once: one image each
        dff = DeepFeatureFactorization(net, net.features[4], computation_on_concepts=net.fc)
        concepts, maps, scores = dff(torch.from_numpy(x[i:i + 1]), n_components=4)
        np.testing.assert_allclose(ours.extras["concepts"][i], concepts, rtol=1e-3, atol=1e-4 * np.abs(concepts).max())
        np.testing.assert_allclose(scale_cam_image(ours.extras["concept_maps"][i], (W, H)), maps[0], atol=1e-3)
        np.testing.assert_allclose(ours.extras["concept_scores"][i], scores, atol=1e-3 * np.abs(scores).max())
        best = int(np.argmax(scores[:, [2, 5][i]]))
        assert ours.extras["concept_for_target"][i] == best
        np.testing.assert_allclose(ours.raw[i], ours.extras["concept_maps"][i][best])
