"""The attribution suite vs Captum and pytorch-grad-cam on resnet18 and mobilenet_v2 exports (legacy and
dynamo), real photos, per-image Pearson r >= 0.99 (>= 0.97 for CAMs)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import onnxviz

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")
grad_cam = pytest.importorskip("pytorch_grad_cam")
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

CASES = ["resnet18_legacy", "resnet18_dynamo", "mobilenet_v2_legacy", "mobilenet_v2_dynamo"]


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def assert_agree(ours: np.ndarray, theirs: np.ndarray, r: float) -> None:
    for i in range(len(ours)):
        got = pearson(ours[i], theirs[i])
        assert got >= r, f"image {i}: Pearson r = {got:.4f} < {r}"


@pytest.fixture(scope="module", params=CASES)
def case(request, build_reference, photos):
    ref = build_reference(request.param)
    for module in ref.net.modules():  # Captum's ReLU hooks refuse in-place ReLUs; the function is the same
        if isinstance(module, torch.nn.ReLU):
            module.inplace = False
    model = onnxviz.load(ref.path)
    x = onnxviz.load_image(photos[:2], model)
    targets = onnxviz.explain(model, x, "occlusion", window=(112,), stride=(112,), progress=False).targets
    return ref, model, x, targets


def _ours(model, x, name, targets, **options):
    return onnxviz.explain(model, x, name, target=targets.tolist(), progress=False, **options)


def test_input_x_gradient(case):
    ref, model, x, t = case
    theirs = captum_attr.InputXGradient(ref.net).attribute(torch.from_numpy(x), target=torch.from_numpy(t))
    assert_agree(_ours(model, x, "input_x_gradient", t).attributions, theirs.detach().numpy(), 0.99)


@pytest.mark.parametrize("rule", ["gausslegendre", "riemann_trapezoid"])
def test_integrated_gradients(case, rule):
    ref, model, x, t = case
    ours = _ours(model, x, "integrated_gradients", t, n_steps=16, method=rule)
    theirs = captum_attr.IntegratedGradients(ref.net).attribute(
        torch.from_numpy(x), baselines=0.0, target=torch.from_numpy(t), n_steps=16, method=rule)
    assert_agree(ours.attributions, theirs.detach().numpy(), 0.99)
    # Captum's trapezoid weights are 1/n (ends halved) and sum to 1 - 1/n; ours are 1/(n - 1) and sum to 1 (IG's
    # completeness). Every weight differs by n / (n - 1) = 16/15: ours must be exactly that multiple, no other.
    factor = 16 / 15 if rule == "riemann_trapezoid" else 1.0
    assert_to_scale(ours.attributions, factor * theirs.detach().numpy())


@pytest.mark.parametrize("nt_type", ["smoothgrad", "smoothgrad_sq", "vargrad"])
def test_noise_tunnels_equal_captum_on_the_same_noise(case, monkeypatch, nt_type):
    """Captum draws its noise with torch.normal; patched to return ours, the two tunnels see the same noisy
    images, so the maps must agree to the scale (assert_to_scale: the tolerance of the plain gradients below),
    not only correlate: the mean, the mean of squares and the variance differ by far more than that."""
    ref, model, x, t = case
    nt, stdev = 3, 0.2
    ours = _ours(model, x, "smoothgrad", t, nt_samples=nt, stdevs=stdev, nt_type=nt_type)
    noise = np.concatenate([np.random.default_rng([0, zlib.crc32(np.ascontiguousarray(s).tobytes())])
                            .standard_normal((nt, *s.shape)) * stdev for s in x]).astype(np.float32)
    monkeypatch.setattr(torch, "normal", lambda mean, std: torch.from_numpy(noise))
    tunnel = captum_attr.NoiseTunnel(captum_attr.Saliency(ref.net))
    theirs = tunnel.attribute(torch.from_numpy(x), nt_type=nt_type, nt_samples=nt, stdevs=stdev,
                              target=torch.from_numpy(t))
    assert_to_scale(ours.attributions, theirs.detach().numpy())


@pytest.mark.parametrize(("name", "reference"), [("guided_backprop", "GuidedBackprop"),
                                                  ("deconvnet", "Deconvolution")])
def test_guided_backprop_and_deconvnet(case, name, reference):
    ref, model, x, t = case
    theirs = getattr(captum_attr, reference)(ref.net).attribute(torch.from_numpy(x), target=torch.from_numpy(t))
    assert_agree(_ours(model, x, name, t).attributions, theirs.detach().numpy(), 0.99)


def test_guided_gradcam(case):
    ref, model, x, t = case
    theirs = captum_attr.GuidedGradCam(ref.net, ref.cam_layer).attribute(torch.from_numpy(x),
                                                                         target=torch.from_numpy(t))
    assert_agree(_ours(model, x, "guided_gradcam", t).attributions, theirs.detach().numpy(), 0.99)


CAMS = {"gradcam_plus_plus": "GradCAMPlusPlus", "xgradcam": "XGradCAM", "layercam": "LayerCAM",
        "hirescam": "HiResCAM", "eigencam": "EigenCAM"}


@pytest.mark.parametrize("name", sorted(CAMS))
def test_gradient_cams_match_pytorch_grad_cam(case, name):
    ref, model, x, t = case
    with getattr(grad_cam, CAMS[name])(ref.net, [ref.cam_layer]) as cam:
        theirs = cam(torch.from_numpy(x), [ClassifierOutputTarget(int(c)) for c in t])
    assert_agree(_ours(model, x, name, t).attributions, theirs, 0.97)


@pytest.mark.parametrize(("name", "reference"), [("scorecam", "ScoreCAM"), ("ablationcam", "AblationCAM")])
def test_forward_cams_match_pytorch_grad_cam(case, name, reference):
    ref, model, x, t = case
    x, t = x[:1], t[:1]  # one image: these run one forward per channel
    with getattr(grad_cam, reference)(ref.net, [ref.cam_layer]) as cam:
        cam.batch_size = 64
        theirs = cam(torch.from_numpy(x), [ClassifierOutputTarget(int(c)) for c in t])
    ours = _ours(model, x, name, t)
    assert ours.backend == "onnxruntime"
    assert_agree(ours.attributions, theirs, 0.97)


def test_cam_is_gradcam_times_the_pooled_area_on_gap_heads(case):
    _, model, x, t = case
    cam = _ours(model, x, "cam", t)
    gradcam = _ours(model, x, "gradcam", t)
    area = np.prod(cam.raw.shape[1:])
    np.testing.assert_allclose(cam.raw, area * gradcam.raw, rtol=1e-3, atol=1e-4 * float(np.abs(cam.raw).max()))


def test_integrated_gradients_completeness_on_resnet18(build_reference, photos):
    model = onnxviz.load(build_reference("resnet18_legacy").path)
    x = onnxviz.load_image(photos[:1], model)
    ex = onnxviz.explain(model, x, "integrated_gradients", n_steps=256, progress=False)
    assert ex.extras["relative_completeness_error"][0] <= 0.01, ex.extras


@pytest.mark.parametrize(("name", "reference"), [("saliency", "Saliency"), ("input_x_gradient", "InputXGradient")])
def test_gradients_equal_captum_to_the_scale(case, name, reference):
    """To the scale, not only correlated (issue 18 item 2): a 2x saliency has Pearson r = 1 with the right one. The
    exported graph folds BatchNorm into the convolutions, so float32 rounding differs from the native module's, and
    where a max-pool or a ReLU sits on a near tie it routes the gradient elsewhere: on resnet18 about 3% of the values
    differ by up to 6% of the largest. So: the norms agree to 1%, 95% of the values agree to 1e-3 of the largest,
    and r > 0.99 -- each far beyond what a factor, a sign or a sibling's formula would give."""
    ref, model, x, t = case
    signed = {"abs": False} if name == "saliency" else {}  # the signed gradient: a sign error must show
    theirs = getattr(captum_attr, reference)(ref.net).attribute(torch.from_numpy(x), target=torch.from_numpy(t),
                                                                **signed).detach().numpy()
    assert_to_scale(_ours(model, x, name, t, **signed).attributions, theirs)


def assert_to_scale(ours: np.ndarray, theirs: np.ndarray) -> None:
    """Per image: the norms agree to 1%, 95% of the values to 1e-3 of the largest, and r > 0.99 (see above)."""
    for a, b in zip(ours.astype(np.float64), theirs.astype(np.float64), strict=True):  # float32 norms underflow
        assert abs(np.linalg.norm(a) / np.linalg.norm(b) - 1) < 0.01
        close = np.abs(a - b) <= 1e-3 * np.abs(b).max()
        assert close.mean() > 0.95, close.mean()
        assert pearson(a, b) > 0.99
