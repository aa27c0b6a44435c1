"""The peer of each onnxviz method on the native PyTorch module, for benchmarks/latency.py: Captum, pytorch-grad-cam
and Zennit, with the same options where both take them (steps, samples, windows, the layer). Each entry builds a
callable that explains the batch once."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class Native:
    """The native network, the batch and targets as tensors, the CAM layer module and how its output becomes NCHW."""

    arch: str
    net: torch.nn.Module
    x: torch.Tensor
    targets: list[int]
    layer: torch.nn.Module
    reshape: Callable | None = None


def _captum(name: str, **kw: Any) -> Callable[[Native], Callable[[], Any]]:
    def build(n: Native) -> Callable[[], Any]:
        import captum.attr

        method = getattr(captum.attr, name)(n.net)
        return lambda: method.attribute(n.x.clone().requires_grad_(), target=n.targets, **kw)

    return build


def _smoothgrad(n: Native) -> Callable[[], Any]:
    from captum.attr import NoiseTunnel, Saliency

    tunnel = NoiseTunnel(Saliency(n.net))
    return lambda: tunnel.attribute(n.x.clone().requires_grad_(), target=n.targets, nt_type="smoothgrad",
                                    nt_samples=5, stdevs=1.0, abs=False)


def _gradient_shap(n: Native) -> Callable[[], Any]:
    from captum.attr import GradientShap

    references = torch.rand(8, *n.x.shape[1:])
    shap = GradientShap(n.net)
    return lambda: shap.attribute(n.x.clone().requires_grad_(), baselines=references, n_samples=50,
                                  target=n.targets)


def _deeplift(n: Native) -> Callable[[], Any]:
    from bench_rules import distinct_relus
    from captum.attr import DeepLift

    lift = DeepLift(distinct_relus(copy.deepcopy(n.net)))
    return lambda: lift.attribute(n.x.clone().requires_grad_(), baselines=0.0, target=n.targets)


def _deeplift_shap(n: Native) -> Callable[[], Any]:
    from bench_rules import distinct_relus
    from captum.attr import DeepLiftShap

    lift = DeepLiftShap(distinct_relus(copy.deepcopy(n.net)))
    references = torch.rand(8, *n.x.shape[1:])
    return lambda: lift.attribute(n.x.clone().requires_grad_(), baselines=references, target=n.targets)


def _conductance(n: Native) -> Callable[[], Any]:
    from captum.attr import LayerConductance

    conductance = LayerConductance(n.net, n.layer)
    return lambda: conductance.attribute(n.x.clone().requires_grad_(), target=n.targets, n_steps=50)


def _occlusion(n: Native) -> Callable[[], Any]:
    from captum.attr import Occlusion

    occlusion = Occlusion(n.net)
    return lambda: occlusion.attribute(n.x, sliding_window_shapes=(3, 16, 16), strides=(3, 8, 8), baselines=0.0,
                                       target=n.targets, perturbations_per_eval=64)


def _lrp(n: Native) -> Callable[[], Any]:
    from zennit.composites import EpsilonPlusFlat
    from zennit.torchvision import ResNetCanonizer

    def run() -> None:
        xt = n.x.clone().requires_grad_()
        with EpsilonPlusFlat(canonizers=[ResNetCanonizer()]).context(n.net) as modified:
            out = modified(xt)
            seed = torch.zeros_like(out)
            seed[torch.arange(len(xt)), torch.as_tensor(n.targets)] = 1
            torch.autograd.grad(out, xt, seed * out)

    return run


def _cam(name: str, layer: bool = True) -> Callable[[Native], Callable[[], Any]]:
    def build(n: Native) -> Callable[[], Any]:
        import pytorch_grad_cam
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        cls = getattr(pytorch_grad_cam, name)
        cam = cls(n.net, [n.layer] if layer else [], reshape_transform=n.reshape)
        targets = [ClassifierOutputTarget(t) for t in n.targets]
        return lambda: cam(input_tensor=n.x, targets=targets)

    return build


# method -> (peer's name, builder, the archs it runs on: None for all)
PEERS: dict[str, tuple[str, Callable[[Native], Callable[[], Any]], tuple[str, ...] | None]] = {
    "saliency": ("Captum Saliency", _captum("Saliency", abs=False), None),
    "input_x_gradient": ("Captum InputXGradient", _captum("InputXGradient"), None),
    "integrated_gradients": ("Captum IntegratedGradients", _captum("IntegratedGradients", n_steps=50), None),
    "smoothgrad": ("Captum NoiseTunnel(Saliency)", _smoothgrad, None),
    "guided_backprop": ("Captum GuidedBackprop", _captum("GuidedBackprop"), ("resnet18", "mobilenet_v3_large")),
    "deconvnet": ("Captum Deconvolution", _captum("Deconvolution"), ("resnet18", "mobilenet_v3_large")),
    "gradient_shap": ("Captum GradientShap", _gradient_shap, None),
    "deeplift": ("Captum DeepLift", _deeplift, ("resnet18",)),
    "deeplift_shap": ("Captum DeepLiftShap", _deeplift_shap, ("resnet18",)),
    "conductance": ("Captum LayerConductance", _conductance, ("resnet18", "mobilenet_v3_large")),
    "occlusion": ("Captum Occlusion (64 per eval)", _occlusion, None),
    "lrp": ("Zennit EpsilonPlusFlat", _lrp, ("resnet18",)),
    "gradcam": ("pytorch-grad-cam GradCAM", _cam("GradCAM"), None),
    "gradcam_plus_plus": ("pytorch-grad-cam GradCAMPlusPlus", _cam("GradCAMPlusPlus"), None),
    "xgradcam": ("pytorch-grad-cam XGradCAM", _cam("XGradCAM"), None),
    "layercam": ("pytorch-grad-cam LayerCAM", _cam("LayerCAM"), None),
    "hirescam": ("pytorch-grad-cam HiResCAM", _cam("HiResCAM"), None),
    "eigencam": ("pytorch-grad-cam EigenCAM", _cam("EigenCAM"), None),
    "eigengradcam": ("pytorch-grad-cam EigenGradCAM", _cam("EigenGradCAM"), None),
    "kpcacam": ("pytorch-grad-cam KPCA_CAM", _cam("KPCA_CAM"), None),
    "scorecam": ("pytorch-grad-cam ScoreCAM", _cam("ScoreCAM"), None),
    "ablationcam": ("pytorch-grad-cam AblationCAM", _cam("AblationCAM"), ("resnet18", "mobilenet_v3_large")),
    "fullgrad": ("pytorch-grad-cam FullGrad", _cam("FullGrad", layer=False), ("resnet18", "mobilenet_v3_large")),
}
