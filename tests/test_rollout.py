"""Attention rollout (Abnar & Zuidema 2020) and its gradient-weighted variant (Chefer et al. 2021) read from the
graph's Softmax nodes equal the same formulas computed on the native timm module's own attention (hooks on the
unfused attention, gradients by autograd), on small ViTs whose attention is sharpened so that a wrong product order,
a transposed fold or the sibling formula gives a visibly different map. Input 96 x 128: a 6 x 8 patch grid."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

import onnxviz
from onnxviz.cli import cli

torch = pytest.importorskip("torch")
pytest.importorskip("timm")

H, W = 96, 128
GRID = (6, 8)
SAME = 1e-4  # float32 through three blocks, relative to the map's maximum (measured ~1e-6)
_BUILT: dict = {}


def _build(kind: str):
    from timm.models.deit import VisionTransformerDistilled
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(1)
    common = {"img_size": (H, W), "num_classes": 5, "patch_size": 16, "embed_dim": 32, "depth": 3, "num_heads": 2}
    net = {"vit": lambda: VisionTransformer(**common),
           "deit": lambda: VisionTransformerDistilled(**common),
           "pooled": lambda: VisionTransformer(**common, class_token=False, global_pool="avg")}[kind]().eval()
    with torch.no_grad():
        for block in net.blocks:  # random weights attend almost uniformly: sharpen the attention
            block.attn.qkv.weight.mul_(12)
    return net


@pytest.fixture(scope="module")
def vit(tmp_path_factory):
    def get(kind: str, exporter: str = "legacy"):
        if kind not in _BUILT:
            _BUILT[kind] = _build(kind)
        if (kind, exporter) not in _BUILT:
            path = tmp_path_factory.mktemp("rollout") / f"{kind}.{exporter}.onnx"
            x = torch.rand(1, 3, H, W)
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                if exporter == "legacy":
                    torch.onnx.export(_BUILT[kind], (x,), str(path), dynamo=False, opset_version=17,
                                      input_names=["input"], output_names=["logits"],
                                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
                else:
                    torch.onnx.export(_BUILT[kind], (x,), str(path), dynamo=True, input_names=["input"],
                                      output_names=["logits"])
                _BUILT[kind, exporter] = onnxviz.load(path, preprocessing="unit")
        return _BUILT[kind], _BUILT[kind, exporter]
    return get


def _images() -> np.ndarray:
    rng = np.random.default_rng(3)
    x = rng.random((2, 3, H, W)).astype(np.float32)
    x[0, :, :, : W // 3] *= 0.1  # a dark left third
    x[1, :, 2 * H // 3 :] = 1.0  # a white bottom band
    return x


def _native_attention(net, x: np.ndarray, target: int | None = None) -> tuple[list, list]:
    """Each block's attention probabilities (N, heads, T, T) from the unfused timm module, and their gradients
    of the target logit when one is given."""
    captured = []

    def keep(_module, _inputs, output):
        output.retain_grad()
        captured.append(output)

    hooks = []
    for block in net.blocks:
        block.attn.fused_attn = False
        hooks.append(block.attn.attn_drop.register_forward_hook(keep))
    try:
        with torch.enable_grad():
            logits = net(torch.from_numpy(x))
            if target is not None:
                logits[:, target].sum().backward()
    finally:
        for hook in hooks:
            hook.remove()
        for block in net.blocks:
            block.attn.fused_attn = True
    grads = [a.grad for a in captured] if target is not None else []
    return [a.detach() for a in captured], grads


def _reference_rollout(attentions, prefix: int, order: str = "right") -> np.ndarray:
    """Abnar & Zuidema in torch: residual-averaged, row-normalized head means, multiplied block after block."""
    steps = []
    for a in attentions:
        fused = a.double().mean(dim=1)
        eye = torch.eye(fused.shape[-1], dtype=fused.dtype)
        step = 0.5 * fused + 0.5 * eye
        steps.append(step / step.sum(dim=-1, keepdim=True))
    ordered = steps[::-1] if order == "right" else steps  # A_L @ ... @ A_1, or the wrong way round
    rolled = ordered[0]
    for step in ordered[1:]:
        rolled = rolled @ step
    row = rolled[:, 0] if prefix else rolled.mean(dim=1)
    return row[:, prefix:].reshape(len(row), *GRID).numpy()


def _reference_relevance(attentions, grads, prefix: int) -> np.ndarray:
    """Chefer et al.'s ViT relevancy: R = I; R = R + mean_heads(clamp(grad * attention, 0)) @ R."""
    n, tokens = attentions[0].shape[0], attentions[0].shape[-1]
    rolled = torch.eye(tokens, dtype=torch.float64).repeat(n, 1, 1)
    for a, g in zip(attentions, grads, strict=True):
        cam = (g.double() * a.double()).clamp(min=0).mean(dim=1)
        rolled = rolled + torch.bmm(cam, rolled)
    row = rolled[:, 0] if prefix else rolled.mean(dim=1)
    return row[:, prefix:].reshape(n, *GRID).numpy()


def _close(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


def _centred(maps: np.ndarray) -> np.ndarray:
    """Without each map's mean: a pooled model's relevancy is 1/T everywhere plus a small class-specific part."""
    return maps - maps.mean(axis=(1, 2), keepdims=True)


@pytest.mark.parametrize(("kind", "prefix", "exporter"), [
    ("vit", 1, "legacy"), ("vit", 1, "dynamo"), ("deit", 2, "legacy"), ("pooled", 0, "legacy")])
def test_rollout_equals_the_formula_on_the_native_attention(vit, kind, prefix, exporter):
    net, model = vit(kind, exporter)
    x = _images()
    attentions, _ = _native_attention(net, x)
    ours = onnxviz.explain(model, x, "rollout", progress=False).raw
    assert ours.shape == (2, *GRID)
    theirs = _reference_rollout(attentions, prefix)
    assert _close(ours, theirs) < SAME
    assert _close(ours, _reference_rollout(attentions, prefix, order="wrong")) > 0.05  # the product order matters
    assert _close(ours, theirs[:, ::-1]) > 0.05 and _close(ours, theirs[:, :, ::-1]) > 0.05  # so do the axes
    assert _close(ours[0], ours[1]) > 0.05  # and the image


@pytest.mark.parametrize(("kind", "prefix"), [("vit", 1), ("deit", 2), ("pooled", 0)])
def test_gradient_rollout_equals_chefers_relevancy_on_the_native_module(vit, kind, prefix):
    net, model = vit(kind)
    x = _images()
    maps = {}
    for target in (1, 3):
        attentions, grads = _native_attention(net, x, target)
        theirs = _reference_relevance(attentions, grads, prefix)
        ours = onnxviz.explain(model, x, "rollout", target=target, variant="gradient", progress=False).raw
        assert _close(ours, theirs) < SAME and _close(_centred(ours), _centred(theirs)) < 10 * SAME, target
        assert _close(_centred(ours), _centred(_reference_rollout(attentions, prefix))) > 0.05  # not plain rollout
        maps[target] = ours
    assert _close(_centred(maps[1]), _centred(maps[3])) > 0.05  # class-specific


def test_head_fusion_and_discard_follow_their_definitions(vit):
    """max / min fusion and the discarded weakest weights, against a direct numpy computation from the attention
    matrices onnxruntime computes."""
    from onnxviz.methods.rollout import discard

    net, model = vit("vit")
    x = _images()[:1]
    attentions = [a[0].double().numpy() for a in _native_attention(net, x)[0]]
    for fusion, fuse in (("max", np.max), ("min", np.min)):
        rolled = np.eye(attentions[0].shape[-1])
        for a in attentions:
            step = fuse(a, axis=0) + np.eye(len(rolled))
            rolled = (step / step.sum(axis=1)[:, None]) @ rolled
        ours = onnxviz.explain(model, x, "rollout", head_fusion=fusion, progress=False).raw[0]
        np.testing.assert_allclose(ours, rolled[0, 1:].reshape(GRID), rtol=1e-4, atol=1e-6 * rolled.max())
    fused = np.arange(12.0).reshape(3, 4)[::-1].copy()  # the smallest weight sits at the end
    kept = discard(fused, 0.5)
    assert (kept == 0).sum() == 6 and kept.max() == 11 and np.all(kept[kept > 0] >= 6)
    corner = np.ones((3, 3))
    corner[0, 0] = 0.1  # the class token's attention to itself is never discarded
    assert discard(corner, 0.2)[0, 0] == 0.1
    plain = onnxviz.explain(model, x, "rollout", progress=False).raw
    sparse = onnxviz.explain(model, x, "rollout", discard_ratio=0.9, progress=False).raw
    assert _close(plain, sparse) > 0.01


def test_rollout_refuses_models_without_global_attention_and_bad_options(vit, digits_model, digits_batch):
    _, model = vit("vit")
    with pytest.raises(onnxviz.OptionError, match=r"discard_ratio must be in \[0, 1\)"):
        onnxviz.explain(model, _images(), "rollout", discard_ratio=1.0, progress=False)
    with pytest.raises(onnxviz.OptionError, match="head_fusion"):
        onnxviz.explain(model, _images(), "rollout", head_fusion="median", progress=False)
    with pytest.raises(onnxviz.OptionError, match="apply to plain rollout"):
        onnxviz.explain(model, _images(), "rollout", variant="gradient", discard_ratio=0.5, progress=False)
    with pytest.raises(onnxviz.MethodError, match="no transformer attention"):
        onnxviz.explain(digits_model, digits_batch, "rollout", progress=False)


def test_windowed_attention_is_refused_by_name():
    from onnxviz.attention import global_attention
    from onnxviz.errors import MethodError
    from onnxviz.layers import Layer

    table = [Layer("ln", "ln", "LayerNormalization", (1, 12, 16, 32), "NHWC"),
             Layer("x", "x", "Reshape", (1, 192, 32), "tokens:0:12x16"),
             Layer("attn", "attn", "Softmax", (12, 2, 16, 16), "")]  # 4 x 4 windows
    with pytest.raises(MethodError, match=r"Softmax over 16 tokens; block inputs NHWC\).*cannot be rolled"):
        global_attention(table, "swin")


def test_rollout_from_the_command_line(vit, tmp_path):
    _, model = vit("vit")
    image = tmp_path / "image.png"
    from PIL import Image

    Image.fromarray((_images()[0].transpose(1, 2, 0) * 255).astype(np.uint8)).save(image)
    result = CliRunner().invoke(cli, ["explain", model.source, str(image), "-m", "rollout", "-o", "variant", "gradient",
                                      "--preprocess", "unit", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert list((tmp_path / "out").glob("*rollout*.png"))


def test_on_a_small_image_attention_is_not_read_as_a_feature_map(tiny_vit):
    """32 x 32 input, 8 x 8 patches: the 17 x 17 attention also fits a stride-2 feature map, and the class token's
    (N, 1, 16) expand fits one-channel tokens; the ops decide, and the default layer is the block's norm1."""
    model = onnxviz.load(tiny_vit, preprocessing="unit")
    by_op = {layer.op_type: layer for layer in model.layers}
    assert by_op["Softmax"].layout == "" and by_op["Softmax"].shape[-2:] == (17, 17)
    assert all(layer.layout == "" for layer in model.layers if layer.shape[-2:] == (17, 17))
    assert all(not layer.layout for layer in model.layers if layer.op_type == "Expand")
    assert model.default_layer.name.endswith("norm1/LayerNormalization_output_0")
    assert model.default_layer.layout == "tokens:1:4x4"
    ours = onnxviz.explain(model, model.probe_input(1), "rollout", progress=False).raw
    assert ours.shape == (1, 4, 4)
