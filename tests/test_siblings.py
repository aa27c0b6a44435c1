"""Each CAM method equals its own pytorch-grad-cam reference, exactly, and not its siblings' (issue 18 item 1).

On a global-average-pooling head the gradient is constant over space, so Grad-CAM = HiResCAM = XGrad-CAM and a
correlation threshold cannot tell them apart. This network ends in Flatten -> Linear (the gradient varies over
space), takes a non-square 40 x 56 input with asymmetric content, and comes as NCHW and as NHWC. The raw maps (at
the layer, after the ReLU, before any normalization or resizing) are compared with assert_allclose, and the test
is a matrix: ours(m) must match ref(m) and stay a clear margin away from ref(m') for every sibling m'."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
grad_cam = pytest.importorskip("pytorch_grad_cam")
from pytorch_grad_cam import base_cam  # noqa: E402
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

import onnxviz  # noqa: E402
from models.exports import FlattenHead, Nhwc  # noqa: E402

H, W = 40, 56
CAMS = {"gradcam": "GradCAM", "hirescam": "HiResCAM", "xgradcam": "XGradCAM", "gradcam_plus_plus": "GradCAMPlusPlus",
        "layercam": "LayerCAM"}
SAME = 2e-4  # float32 forward and backward through two convolutions: relative to the map's maximum
APART = 0.05  # siblings differ by at least 5% of the map's maximum somewhere on this network


@pytest.fixture(scope="module", params=["NCHW", "NHWC"])
def setup(request, tmp_path_factory):
    net = FlattenHead(H, W).eval()
    exported = Nhwc(net).eval() if request.param == "NHWC" else net
    shape = (1, H, W, 3) if request.param == "NHWC" else (1, 3, H, W)
    path = tmp_path_factory.mktemp("siblings") / f"flatten_{request.param}.onnx"
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(exported, (torch.rand(*shape),), str(path), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    model = onnxviz.load(path)
    rng = np.random.default_rng(0)
    images = rng.random((2, H, W, 3)).astype(np.float32)
    images[0, :, : W // 3] *= 0.2  # asymmetric content: a dark left third, a bright bottom band
    images[1, 2 * H // 3 :] = np.clip(images[1, 2 * H // 3 :] + 0.5, 0, 1)
    x = onnxviz.load_image(list(images), model, preprocessing="unit")
    layer = next(layer.name for layer in model.layers if layer.op_type == "Relu" and layer.shape[1:2] == (8,))
    return net, model, x, layer, request.param


def _theirs(net, x_nchw, targets, reference, monkeypatch) -> np.ndarray:
    """pytorch-grad-cam's raw map at the layer: its ReLU'd map before scale_cam_image normalizes and resizes it."""
    monkeypatch.setattr(base_cam, "scale_cam_image", lambda cam, target_size=None: np.float32(cam))
    with getattr(grad_cam, reference)(net, [net.features[-1]]) as cam:
        return cam(torch.from_numpy(x_nchw), [ClassifierOutputTarget(int(c)) for c in targets])


def test_each_cam_matches_its_reference_and_not_its_siblings(setup, monkeypatch):
    net, model, x, layer, layout = setup
    x_nchw = x if layout == "NCHW" else np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    targets = np.array([1, 3])
    ours = {m: onnxviz.explain(model, x, m, target=targets.tolist(), layer=layer, progress=False).raw for m in CAMS}
    theirs = {m: _theirs(net, x_nchw, targets, ref, monkeypatch) for m, ref in CAMS.items()}
    assert ours["gradcam"].shape == theirs["gradcam"].shape == (2, H // 2, W // 2)
    errors = {}
    for m in CAMS:
        for r in CAMS:
            scale = np.abs(theirs[r]).max(axis=(1, 2), keepdims=True)
            errors[m, r] = float((np.abs(ours[m] - theirs[r]) / scale).max())
    table = "\n".join(f"{m:>18} " + " ".join(f"{errors[m, r]:9.2e}" for r in CAMS) for m in CAMS)
    for m in CAMS:
        assert errors[m, m] < SAME, f"{m} differs from its own reference ({layout}):\n{table}"
        for r in CAMS:
            if r != m:
                assert errors[m, r] > APART, f"{m} cannot be told from {r} on this network ({layout}):\n{table}"


GRADIENTS = {"saliency": ("Saliency", {"abs": True}), "input_x_gradient": ("InputXGradient", {}),
             "guided_backprop": ("GuidedBackprop", {}), "deconvnet": ("Deconvolution", {}),
             "integrated_gradients": ("IntegratedGradients", {"n_steps": 16, "method": "gausslegendre"})}


def test_each_gradient_method_matches_captum_and_not_its_siblings(setup):
    """The same matrix for the gradient methods against Captum on the native module (same rules, same steps)."""
    captum_attr = pytest.importorskip("captum.attr")
    net, model, x, _, layout = setup
    x_nchw = x if layout == "NCHW" else np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    targets = np.array([2, 4])
    options = {"integrated_gradients": {"n_steps": 16, "method": "gausslegendre"}}
    ours = {}
    for m in GRADIENTS:
        a = onnxviz.explain(model, x, m, target=targets.tolist(), progress=False, **options.get(m, {})).attributions
        ours[m] = a if layout == "NCHW" else a.transpose(0, 3, 1, 2)
    theirs = {}
    for m, (reference, kwargs) in GRADIENTS.items():
        attribution = getattr(captum_attr, reference)(net)
        theirs[m] = attribution.attribute(torch.from_numpy(x_nchw), target=torch.from_numpy(targets),
                                          **kwargs).detach().numpy()
    errors = {(m, r): float((np.abs(ours[m] - theirs[r]) / np.abs(theirs[r]).max()).max())
              for m in GRADIENTS for r in GRADIENTS}
    table = "\n".join(f"{m:>22} " + " ".join(f"{errors[m, r]:9.2e}" for r in GRADIENTS) for m in GRADIENTS)
    for m in GRADIENTS:
        assert errors[m, m] < SAME, f"{m} differs from Captum ({layout}):\n{table}"
        for r in GRADIENTS:
            if r != m:
                assert errors[m, r] > APART, f"{m} cannot be told from {r} on this network ({layout}):\n{table}"
