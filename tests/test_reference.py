"""Differential tests: onnxviz on real exports vs Captum / pytorch-grad-cam on the native networks, on real
photos, with batches of two or more. Also parity of outputs and of the default CAM layer's activations."""

from __future__ import annotations

import numpy as np
import pytest

import onnxviz

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")
grad_cam = pytest.importorskip("pytorch_grad_cam")
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

CASES = ["resnet18_legacy", "resnet18_dynamo", "mobilenet_v2_legacy", "mobilenet_v2_dynamo", "nhwc_softmax", "digits"]


class NhwcGradCAM(grad_cam.GradCAM):
    """pytorch-grad-cam reads the output size from the last two axes; an NHWC input keeps them in 1 and 2."""

    def get_target_width_height(self, input_tensor):
        return input_tensor.size(2), input_tensor.size(1)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.fixture(scope="module", params=CASES)
def case(request, build_reference, photos):
    from onnxviz.demo import demo_images

    ref = build_reference(request.param)
    model = onnxviz.load(ref.path)
    images = demo_images() if ref.name == "digits" else photos
    x = onnxviz.load_image(images, model)
    return ref, model, x


def test_layout_batch_and_softmax_are_detected(case):
    ref, model, x = case
    assert model.input.layout == ("NHWC" if ref.nhwc else "NCHW")
    assert model.input.fixed_batch == (1 if ref.name.endswith("dynamo") else None)
    assert bool(model.softmax_tails) == (ref.softmax_net is not None)
    assert len(x) >= 2


def test_outputs_and_cam_layer_activations_match_the_native_network(case):
    ref, model, x = case
    model.torch  # noqa: B018  (conversion + parity probe)
    assert model.parity.ok, str(model.parity)
    captured = {}

    def keep(module, inputs, output) -> None:
        captured["act"] = output.detach().numpy()

    hook = ref.cam_layer.register_forward_hook(keep)
    with torch.no_grad():
        native = ref.net(torch.from_numpy(x)).numpy()
    hook.remove()
    tensor, _ = model.score_tensor(onnxviz.Target())
    logits, acts = model.ort.run(x[:1], (tensor, model.default_layer.name)) if model.input.fixed_batch else \
        model.ort.run(x, (tensor, model.default_layer.name))
    n = len(logits)
    scale = max(1.0, float(np.abs(native).max()))
    np.testing.assert_allclose(logits, native[:n], atol=1e-4 * scale)
    np.testing.assert_allclose(acts, captured["act"][:n], atol=1e-4 * max(1.0, float(np.abs(acts).max())))


def test_saliency_matches_captum(case):
    ref, model, x = case
    ex = onnxviz.explain(model, x, "saliency", progress=False)
    expected = captum_attr.Saliency(ref.net).attribute(torch.from_numpy(x).requires_grad_(),
                                                      target=torch.from_numpy(ex.targets)).numpy()
    for i in range(len(x)):
        assert pearson(ex.attributions[i], expected[i]) >= 0.99


def test_gradcam_matches_pytorch_grad_cam(case):
    ref, model, x = case
    ex = onnxviz.explain(model, x, "gradcam", progress=False)
    cam_cls = NhwcGradCAM if ref.nhwc else grad_cam.GradCAM
    with cam_cls(ref.net, [ref.cam_layer]) as cam:
        expected = cam(torch.from_numpy(x), [ClassifierOutputTarget(int(t)) for t in ex.targets])
    for i in range(len(x)):
        assert pearson(ex.attributions[i], expected[i]) >= 0.97


def test_occlusion_matches_captum(case):
    ref, model, x = case
    small = ref.name == "digits"
    window, stride = (8, 4) if small else (56, 40)
    ex = onnxviz.explain(model, x, "occlusion", window=(window,), stride=(stride,), progress=False)
    shape = (window, window, 3) if ref.nhwc else (x.shape[1], window, window)
    strides = (stride, stride, 3) if ref.nhwc else (x.shape[1], stride, stride)
    expected = captum_attr.Occlusion(ref.net).attribute(torch.from_numpy(x), sliding_window_shapes=shape,
                                                       strides=strides, target=torch.from_numpy(ex.targets)).numpy()
    for i in range(len(x)):
        assert pearson(ex.attributions[i], expected[i]) >= 0.99
    np.testing.assert_allclose(ex.attributions, expected, atol=1e-3 * max(1.0, float(np.abs(expected).max())))


def test_softmax_target_matches_captum_on_probabilities(build_reference, photos):
    ref = build_reference("nhwc_softmax")
    model = onnxviz.load(ref.path)
    x = onnxviz.load_image(photos[:2], model)
    ex = onnxviz.explain(model, x, "saliency", target="softmax:top1", progress=False)
    expected = captum_attr.Saliency(ref.softmax_net).attribute(torch.from_numpy(x).requires_grad_(),
                                                              target=torch.from_numpy(ex.targets)).numpy()
    for i in range(len(x)):
        assert pearson(ex.attributions[i], expected[i]) >= 0.99


@pytest.mark.parametrize("baseline", ["mean", "blur", "image"])
def test_occlusion_baselines_match_captum(build_reference, photos, baseline, tmp_path):
    import cv2

    from onnxviz.baselines import make_baseline

    ref = build_reference("resnet18_legacy")
    model = onnxviz.load(ref.path)
    x = onnxviz.load_image(photos[:2], model)
    spec = baseline
    if baseline == "image":
        spec = str(tmp_path / "grey.png")
        cv2.imwrite(spec, np.full((50, 60, 3), 128, np.uint8))
    ex = onnxviz.explain(model, x, "occlusion", window=(56, 48), stride=(40, 32), baseline=spec, progress=False)
    fill = make_baseline(spec, x, "NCHW", None, 10.0, lambda p: onnxviz.load_image(p, model))
    expected = captum_attr.Occlusion(ref.net).attribute(
        torch.from_numpy(x), sliding_window_shapes=(3, 56, 48), strides=(3, 40, 32),
        baselines=torch.from_numpy(fill), target=torch.from_numpy(ex.targets)).numpy()
    np.testing.assert_allclose(ex.attributions, expected, atol=1e-3 * max(1.0, float(np.abs(expected).max())))
