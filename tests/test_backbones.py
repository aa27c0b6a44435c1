"""The coverage matrix of issue 19: modern backbones with random weights, each from the legacy and the dynamo
exporter at a non-square 128 x 160 input (torchvision's ViT takes square images only: 128 x 128). For each: it loads,
its default layer is a feature map or token grid of the right layout (never an attention matrix or a per-head
slice), Grad-CAM at that layer is finite and not all zero, saliency equals the native module's input gradient, and
attention rollout runs exactly where every block attends over one token grid (and says why not elsewhere)."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest

import onnxviz

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

H, W = 128, 160


def _torchvision_vit():
    import torchvision

    net = torchvision.models.VisionTransformer(image_size=128, patch_size=16, num_layers=2, num_heads=2, hidden_dim=32,
                                               mlp_dim=64, num_classes=5)
    with torch.no_grad():
        net.heads.head.weight.normal_(0, 0.5)  # torchvision starts its head at zero: a constant model
    return net


def _hf_vit():
    transformers = pytest.importorskip("transformers")
    config = transformers.ViTConfig(image_size=(H, W), patch_size=16, hidden_size=32, num_hidden_layers=2,
                                    num_attention_heads=2, intermediate_size=64, num_labels=5)
    inner = transformers.ViTForImageClassification(config).eval()
    with torch.no_grad():  # random weights attend almost uniformly: sharpen so that rollout has something to show
        for name, module in inner.named_modules():  # transformers 5 names it q_proj, 4 attention.query
            if name.endswith(("q_proj", "attention.query")):
                module.weight.mul_(10)

    class Logits(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(pixel_values=x).logits

    return Logits()


def _timm(name: str, **kwargs):
    return lambda: timm.create_model(name, pretrained=False, num_classes=5, **kwargs)


def _levit():
    """LeViT starts its residual BatchNorms at zero: an almost constant function whose float32 input gradient is
    rounding noise (r 0.02 between two float32 computations); scale 1 makes it a function of the image."""
    net = timm.create_model("levit_128s", pretrained=False, num_classes=5, img_size=(H, W))
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                module.weight.fill_(1.0)
    return net


# name -> (builder, default layer layout prefix, what rollout says: None = it runs, else a phrase of its refusal)
BACKBONES = {
    "levit_128s": (_levit, "tokens:0:2x3", "several token grids"),
    "mobilevit_xxs": (_timm("mobilevit_xxs"), "NCHW", "not over all of an image's tokens"),
    "convnext_atto": (_timm("convnext_atto"), "NCHW", "no transformer attention"),
    "efficientnet_b0": (_timm("efficientnet_b0"), "NCHW", "no transformer attention"),
    "poolformer_s12": (_timm("poolformer_s12"), "NCHW", "no transformer attention"),
    "torchvision_vit": (_torchvision_vit, "tokens:1:8x8", None),
    "hf_vit": (_hf_vit, "tokens:1:8x10", None),
}
_NETS: dict = {}


@contextlib.contextmanager
def _contiguous_batchnorm_grads(net):
    """PyTorch 2.x on CPU: BatchNorm2d's eval backward is wrong when its incoming gradient has channels-last strides
    with an odd batch stride (N = 1), as LeViT's flatten-transpose produces: `g = base.as_strided((1, 128, 8, 10),
    (128, 1, 1280, 128))` gives a different input gradient than `g.contiguous()` (max |diff| 3.9 on values of 2.9).
    The native reference is made contiguous there; onnxviz's converted BatchNormalization does not use that kernel."""
    hooks = [m.register_full_backward_pre_hook(lambda _m, grads: tuple(g.contiguous() for g in grads))
             for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    def get(name: str, exporter: str):
        if name not in _NETS:
            torch.manual_seed(0)
            _NETS[name] = BACKBONES[name][0]().eval()
        net = _NETS[name]
        shape = (1, 3, 128, 128) if name == "torchvision_vit" else (1, 3, H, W)
        path = tmp_path_factory.mktemp("backbones") / f"{name}.{exporter}.onnx"
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            if exporter == "legacy":
                torch.onnx.export(net, (torch.rand(*shape),), str(path), dynamo=False, opset_version=17,
                                  input_names=["input"], output_names=["logits"],
                                  dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
            else:
                torch.onnx.export(net, (torch.rand(*shape),), str(path), dynamo=True, input_names=["input"],
                                  output_names=["logits"])
            model = onnxviz.load(path, preprocessing="unit")
        return net, model, np.random.default_rng(0).random(shape).astype(np.float32)
    return get


@pytest.mark.parametrize("exporter", ["legacy", "dynamo"])
@pytest.mark.parametrize("name", list(BACKBONES))
def test_a_backbone_loads_picks_a_sensible_layer_and_explains(backbone, name, exporter):
    net, model, x = backbone(name, exporter)
    _, layout, rollout = BACKBONES[name]
    layer = model.default_layer
    assert layer is not None and layer.layout.startswith(layout), (layer, model.default_layer)
    assert layer.op_type != "Softmax"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cams = [onnxviz.explain(model, x, "gradcam", target=k, progress=False) for k in range(5)]
        saliency = onnxviz.explain(model, x, "saliency", target=1, progress=False)
    assert all(cam.backend == "torch" and np.isfinite(cam.raw).all() for cam in cams)
    assert any(cam.raw.max() > 0 for cam in cams)  # a class with positive evidence at the layer (ReLU'd sums)
    xt = torch.from_numpy(x).requires_grad_(True)
    with _contiguous_batchnorm_grads(net):
        (grad,) = torch.autograd.grad(net(xt)[0, 1], xt)
    theirs = grad.abs().numpy()
    np.testing.assert_allclose(saliency.attributions, theirs, atol=1e-4 * theirs.max())  # float32 end to end
    if rollout is None:
        maps = onnxviz.explain(model, x, "rollout", progress=False).raw
        assert maps.shape[1:] == layer.spatial and np.isfinite(maps).all() and maps.max() > 0
    else:
        with pytest.raises(onnxviz.MethodError, match=rollout):
            onnxviz.explain(model, x, "rollout", progress=False)


def test_rollout_on_a_transformers_vit_equals_the_formula_on_its_own_attention_outputs(backbone):
    """`output_attentions=True` (eager attention) gives each layer's probabilities; rolled out by hand they equal
    ours read from the exported graph's Softmax nodes."""
    net, model, x = backbone("hf_vit", "legacy")
    inner = net.inner
    inner.config._attn_implementation = "eager"
    with torch.no_grad():
        attentions = inner(pixel_values=torch.from_numpy(x), output_attentions=True).attentions
    rolled = torch.eye(attentions[0].shape[-1], dtype=torch.float64)
    for a in attentions:
        step = a[0].double().mean(dim=0) + torch.eye(len(rolled), dtype=torch.float64)
        rolled = (step / step.sum(dim=1, keepdim=True)) @ rolled
    theirs = rolled[0, 1:].reshape(8, 10).numpy()
    ours = onnxviz.explain(model, x, "rollout", progress=False).raw[0]
    span = np.ptp(theirs)  # ~8 % of the map's level: the residual identity keeps rollout near uniform
    np.testing.assert_allclose(ours, theirs, atol=1e-3 * span)
    assert span > 0.05 * theirs.max() and np.abs(ours - theirs[::-1]).max() > 0.3 * span
